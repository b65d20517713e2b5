"""The participants' result lines -> ConferenceMetrics and WorkloadMetrics.

A meeting of n participants is n * (n - 1) streams (each one's media as each other one
received it): those are the workload's items, and a stream is done when its receiver got
it with no more loss than `max_loss_pct`. Loss is against what the sender really sent on
that pair's connection (its RTCP-independent packet counter), since RFC 3550's expected
count misses a lost tail. The workload's duration is the meeting's join time (the slowest
participant's start -> its last peer connection DTLS done), so the timed-workload limit
(`works_max_load_p95_ms`) applies to joining.
"""

from __future__ import annotations

from typing import Any

from harness.results import (
    ConferenceMetrics,
    ConferenceParticipant,
    ConferenceStream,
    WorkloadMetrics,
)
from harness.scoring.stats import percentile

# Outcomes a participant can end with that say more than "no-media", most telling first.
SIGNALLING_OUTCOMES = ("dns-failure", "tls-alert", "refused", "reset", "timeout", "error")


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _links(result: dict[str, Any]) -> list[dict[str, Any]]:
    return list((result.get("links") or {}).values())


def _link(result: dict[str, Any], other: int) -> dict[str, Any]:
    return (result.get("links") or {}).get(str(other)) or {}


def stream(
    results: list[dict[str, Any]], sender: int, receiver: int, max_loss_pct: float
) -> ConferenceStream:
    sent = int(_link(results[sender], receiver).get("sent") or 0)
    rx = _link(results[receiver], sender)
    received = int(rx.get("received") or 0)
    loss = round(100.0 * max(sent - received, 0) / sent, 3) if sent else None
    return ConferenceStream(
        sender=sender,
        receiver=receiver,
        sent=sent,
        received=received,
        loss_pct=loss,
        jitter_ms=rx.get("jitter_ms"),
        ok=received > 0 and loss is not None and loss <= max_loss_pct,
    )


def _failure(s: ConferenceStream, max_loss_pct: float) -> str:
    where = f"p{s.receiver} from p{s.sender}"
    if not s.received:
        return f"{where}: no media ({s.sent} packets sent)"
    if s.loss_pct is None:
        return f"{where}: {s.received} packets received, none counted as sent"
    return f"{where}: {s.loss_pct:g}% lost > {max_loss_pct:g}%"


def participant(
    result: dict[str, Any], index: int, streams: list[ConferenceStream]
) -> ConferenceParticipant:
    links = _links(result)
    return ConferenceParticipant(
        index=index,
        outcome=str(result.get("outcome") or "error"),
        joined=bool(result.get("joined")),
        join_ms=result.get("join_ms"),
        signalling_ms=result.get("signalling_ms"),
        connected=sum(1 for link in links if link.get("connected_ms") is not None),
        media_from=[s.sender for s in streams if s.receiver == index and s.ok],
        relay=sorted({link["pair"] for link in links if link.get("pair")}),
    )


def merge(
    results: list[dict[str, Any]], transport: str, max_loss_pct: float
) -> tuple[ConferenceMetrics, WorkloadMetrics]:
    """Results are indexed by participant (results[i] is participant i's line, {} if none)."""
    n = len(results)
    streams = [stream(results, s, r, max_loss_pct) for r in range(n) for s in range(n) if s != r]
    members = [participant(results[i], i, streams) for i in range(n)]
    losses = [s.loss_pct for s in streams if s.loss_pct is not None]
    all_joined = all(m.joined for m in members)
    joins = [m.join_ms for m in members if m.join_ms is not None]
    connects = [
        float(link["connected_ms"])
        for r in results
        for link in _links(r)
        if link.get("connected_ms") is not None
    ]
    conference = ConferenceMetrics(
        participants=n,
        turn_transport=transport,
        all_joined=all_joined,
        join_ms_max=max(joins) if all_joined and joins else None,
        loss_pct_worst=max(losses) if losses else None,
        media_share_worst=round(min(len(m.media_from) for m in members) / (n - 1), 4),
        members=members,
        streams=streams,
    )
    done = [s for s in streams if s.ok]
    workload = WorkloadMetrics(
        items=len(streams),
        completed=len(done),
        duration_ms=conference.join_ms_max,
        bytes=sum(int(link.get("bytes") or 0) for r in results for link in _links(r)),
        item_ms_p50=_ms(percentile(connects, 50)),
        item_ms_p95=_ms(percentile(connects, 95)),
        failures=[_failure(s, max_loss_pct) for s in streams if not s.ok],
    )
    return conference, workload


def outcome(results: list[dict[str, Any]], workload: WorkloadMetrics) -> tuple[str, str | None]:
    """ok when every stream is done; else a participant's signalling failure if one had
    one (what a censor did to the meeting's server), else no-media, with the first errors."""
    if workload.items and workload.completed == workload.items:
        return "ok", None
    outcomes = [str(r.get("outcome") or "error") for r in results]
    errors = [f"p{i}: {r['error']}" for i, r in enumerate(results) if r.get("error")]
    if "harness-fault" in outcomes:
        return "harness-fault", "; ".join(errors) or "a participant gave no result"
    worst = next((o for o in SIGNALLING_OUTCOMES if o in outcomes), "no-media")
    text = "; ".join(errors) or f"{workload.completed}/{workload.items} streams received"
    return worst, text
