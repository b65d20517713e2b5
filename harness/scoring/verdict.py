"""Per-cell scores and verdicts from the trials of one (censor, tool, app) cell.

The thresholds are gatecrash's proposal (voip-metrics.md, "Proposed verdict
thresholds"), not a standard; a scenario may override each one.

How a cell is judged:
- Harness faults are never evidence: a trial whose last attempt was a harness fault is
  left out of every ratio. Too many of them (a share above `max_fault_share`, or no valid
  trial at all) make the cell `invalid`, with the fault named.
- A success ratio (calls set up, sessions connected) says which verdict the cell points
  at; its 95% Wilson interval says whether the trials are enough to say so. When they are
  not, the cell is `inconclusive` and the reason says how many more trials like these
  would decide it.
- What was measured on the calls that did set up (median R, share without media, p95
  PDD) and on the messages that were sent (delivery ratio) decides `media-blocked`,
  `blocked` by delivery and `degraded` as measured. Messages of one session share its
  fate, so they are not independent trials: the delivery ratio is a measurement, like R,
  not a ratio to put an interval on.
- Workloads (the bystanders: web, download, dns) succeed when the whole workload
  completed; the share of items completed (resources, files, names) is measured like
  delivery, and a download's median throughput or a timed workload's p95 duration (page
  load, resolution) below its works limit makes the cell `degraded`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.results import (
    CallMetrics,
    DirectionStats,
    TrialResult,
    WorkloadMetrics,
    final_attempts,
)
from harness.scoring.emodel import mos_from_r
from harness.scoring.stats import median, percentile, wilson_interval, wilson_interval_of_ratio

Kind = Literal["call", "message", "workload"]
CellVerdict = Literal[
    "works",
    "degraded",
    "blocked",
    "signalling-blocked",
    "media-blocked",
    "inconclusive",
    "invalid",
]
# What a success ratio points at before its interval is asked whether the trials say so.
Candidate = Literal["works", "degraded", "blocked"]

GOOD_R = 70.0  # r70_share counts calls at or above this R (MOS 3.6)
# How far "N more trials like these would decide it" looks before saying "never".
MAX_MORE_TRIALS = 10_000


class Thresholds(BaseModel):
    """Verdict limits; `works` needs all works_* limits, blocked_* limits decide `blocked`."""

    model_config = ConfigDict(extra="forbid")

    works_min_cssr_lower: float = Field(
        0.8, ge=0, le=1, description="works: lower 95% Wilson bound of the success ratio"
    )
    works_min_r: float = Field(70.0, ge=0, le=100, description="works: median R of set-up calls")
    works_max_pdd_p95_ms: float = Field(5000.0, gt=0, description="works: p95 post-dial delay")
    works_min_delivery: float = Field(
        0.95, ge=0, le=1, description="works: delivered / sent messages; workloads: items done"
    )
    works_min_throughput_mbps: float = Field(
        2.0, ge=0, description="works: median throughput of completed downloads (Mbit/s)"
    )
    works_max_load_p95_ms: float = Field(
        5000.0, gt=0, description="works: p95 duration of a timed workload (page load, names)"
    )
    blocked_max_cssr_upper: float = Field(
        0.2, ge=0, le=1, description="blocked: upper 95% Wilson bound of the success ratio below"
    )
    media_blocked_max_r: float = Field(
        50.0, ge=0, le=100, description="media-blocked: median R of set-up calls below"
    )
    blocked_max_delivery: float = Field(
        0.2, ge=0, le=1, description="blocked: delivered / sent messages (workloads: done) below"
    )
    max_fault_share: float = Field(
        0.2,
        ge=0,
        le=1,
        description="invalid: share of a cell's trials that ended in a harness fault above",
    )

    @model_validator(mode="after")
    def _blocked_below_works(self) -> Self:
        pairs = (
            ("blocked_max_cssr_upper", "works_min_cssr_lower"),
            ("media_blocked_max_r", "works_min_r"),
            ("blocked_max_delivery", "works_min_delivery"),
        )
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not exceed {high}")
        return self


class CellScore(BaseModel):
    """One row of the score table; units in the names, None where nothing was measured."""

    model_config = ConfigDict(extra="forbid")

    censor: str
    tool: str
    app: str
    kind: Kind
    trials: int  # every trial of the cell, those that ended in a harness fault included
    valid_trials: int  # trials not ended by a harness fault: the ones scored
    successes: int  # calls set up / messaging sessions connected, of the valid trials
    cssr: float  # successes / valid_trials
    cssr_ci: list[float] = Field(min_length=2, max_length=2)  # 95% Wilson interval
    setup_ms_p50: float | None = None  # calls: INVITE -> 200 OK; messages: connect time
    setup_ms_p95: float | None = None
    pdd_ms_p95: float | None = None
    mos_median: float | None = None
    r_median: float | None = None  # over set-up calls; a call without R counts as 0
    r70_share: float | None = None  # share of set-up calls with R >= 70
    loss_pct_median: float | None = None  # worse direction of each call
    jitter_ms_median: float | None = None  # worse direction of each call
    delivery_ratio: float | None = None  # messages only
    completeness: float | None = None  # workloads: items completed / items
    throughput_mbps_median: float | None = None  # downloads: of the completed ones
    verdict: CellVerdict
    reason: str
    outcomes: dict[str, int] = Field(default_factory=dict)  # of each trial's last attempt
    faults: int = 0  # trials whose last attempt was a harness fault (not scored)
    fault_attempts: int = 0  # attempts that ended in a harness fault, retried ones included
    fault_kinds: dict[str, int] = Field(default_factory=dict)  # fault kind -> attempts


def _succeeded(trial: TrialResult) -> bool:
    """Set up / connected, and not by a tool that failed (the tool did not get it through)."""
    if trial.outcome == "tool-failure":
        return False
    if trial.call is not None:
        return trial.call.setup_ok
    if trial.workload is not None:
        return trial.outcome == "ok" and trial.workload.completed == trial.workload.items > 0
    return trial.message is not None and trial.message.connected


def _worst(call: CallMetrics, attr: str) -> float | None:
    stats: list[DirectionStats] = [d for d in (call.up, call.down) if d is not None]
    return max((getattr(d, attr) for d in stats), default=None)


def _pct(ratio: float) -> str:
    return f"{round(ratio * 100, 2):g}%"


def _rnd(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _ratio_text(successes: int, n: int, what: str, label: str, ci: tuple[float, float]) -> str:
    ratio = successes / n
    return f"{successes}/{n} {what} ({label} {ratio:.2f}, 95% CI {ci[0]:.2f}-{ci[1]:.2f})"


# ---------------------------------------------------------------- enough trials?


def _candidate(ratio: float, th: Thresholds) -> Candidate:
    """What the bare success ratio points at."""
    if ratio < th.blocked_max_cssr_upper:
        return "blocked"
    if ratio >= th.works_min_cssr_lower:
        return "works"
    return "degraded"


def _supports(candidate: Candidate, ci: tuple[float, float], th: Thresholds) -> bool:
    """Whether the interval is narrow enough to say the candidate: degraded needs both
    works and blocked ruled out."""
    if candidate == "works":
        return ci[0] >= th.works_min_cssr_lower
    if candidate == "blocked":
        return ci[1] < th.blocked_max_cssr_upper
    return ci[1] < th.works_min_cssr_lower and ci[0] >= th.blocked_max_cssr_upper


def _why_not_yet(candidate: Candidate, ci: tuple[float, float], th: Thresholds) -> str:
    """Which bound stands in the candidate's way."""
    if candidate == "works":
        return f"CI lower bound {ci[0]:.2f} < {th.works_min_cssr_lower:.2f}"
    if candidate == "blocked":
        return f"CI upper bound {ci[1]:.2f} >= {th.blocked_max_cssr_upper:.2f}"
    open_ends = []
    if ci[1] >= th.works_min_cssr_lower:
        open_ends.append(f"CI upper bound {ci[1]:.2f} >= {th.works_min_cssr_lower:.2f}")
    if ci[0] < th.blocked_max_cssr_upper:
        open_ends.append(f"CI lower bound {ci[0]:.2f} < {th.blocked_max_cssr_upper:.2f}")
    return ", ".join(open_ends)


def _below_works(ci: tuple[float, float], th: Thresholds) -> str:
    """Why a supported `degraded` is below works: the whole interval is."""
    return f"CI upper bound {ci[1]:.2f} < {th.works_min_cssr_lower:.2f}"


def more_trials_to_decide(successes: int, n: int, th: Thresholds) -> int | None:
    """The fewest further trials, all with this cell's success ratio, after which the
    interval supports what the ratio points at; None if no number up to MAX_MORE_TRIALS
    does (a ratio right on a limit never gets past it)."""
    ratio = successes / n
    candidate = _candidate(ratio, th)
    for more in range(1, MAX_MORE_TRIALS + 1):
        if _supports(candidate, wilson_interval_of_ratio(ratio, n + more), th):
            return more
    return None


def _undecided(
    name: str, candidate: Candidate, successes: int, n: int, ci: tuple[float, float], th: Thresholds
) -> str:
    """The reason of an inconclusive cell: what it points at, and what would decide it."""
    more = more_trials_to_decide(successes, n, th)
    head = f"too few trials to say {name} ({_why_not_yet(candidate, ci, th)})"
    if more is None:
        return f"{head}; more trials like these would never decide {name} (never at this ratio)"
    return f"{head}; {_plural(more, 'more trial')} like these would decide {name}"


# ---------------------------------------------------------------- calls


def _quality_misses(r_med: float | None, pdd_p95: float | None, th: Thresholds) -> list[str]:
    """Works limits the set-up calls measurably missed."""
    misses = []
    if r_med is None:
        misses.append("no call set up to rate")
    elif r_med < th.works_min_r:
        misses.append(f"median R {r_med:.1f} < {th.works_min_r:g}")
    if pdd_p95 is not None and pdd_p95 > th.works_max_pdd_p95_ms:
        misses.append(f"p95 PDD {pdd_p95:.0f} ms > {th.works_max_pdd_p95_ms:g} ms")
    return misses


def _call_verdict(
    said: str,
    set_up: int,
    n: int,
    ci: tuple[float, float],
    r_med: float | None,
    no_media: int,
    pdd_p95: float | None,
    th: Thresholds,
) -> tuple[CellVerdict, str]:
    """Signalling blocked with enough trials first, then media measured as blocked, then
    a ratio too thin to decide, then measured quality, then the ratio's own verdict."""
    if ci[1] < th.blocked_max_cssr_upper:
        return "signalling-blocked", f"{said}: upper bound < {th.blocked_max_cssr_upper:.2f}"
    if r_med is not None and (r_med < th.media_blocked_max_r or 2 * no_media > set_up):
        why = []
        if r_med < th.media_blocked_max_r:
            why.append(f"median R {r_med:.1f} < {th.media_blocked_max_r:g}")
        if no_media:
            why.append(f"{no_media} of {set_up} had no media")
        return "media-blocked", f"{said}, but {' and '.join(why)}"
    candidate = _candidate(set_up / n, th)
    if candidate == "blocked":
        return "inconclusive", f"{said}: " + _undecided(
            "signalling-blocked", candidate, set_up, n, ci, th
        )
    if misses := _quality_misses(r_med, pdd_p95, th):
        return "degraded", f"{said}; misses works: {'; '.join(misses)}"
    rated = f"{said}, median R {r_med:.1f}"
    if not _supports(candidate, ci, th):
        return "inconclusive", f"{rated}: " + _undecided(candidate, candidate, set_up, n, ci, th)
    if candidate == "degraded":
        return "degraded", f"{rated}; misses works: {_below_works(ci, th)}"
    pdd_text = "no PDD measured" if pdd_p95 is None else f"p95 PDD {pdd_p95:.0f} ms"
    return "works", f"{rated} >= {th.works_min_r:g}, {pdd_text}"


def _score_calls(trials: Sequence[TrialResult], th: Thresholds) -> dict[str, Any]:
    n = len(trials)
    calls = [t.call for t in trials if _succeeded(t) and t.call is not None]
    ci = wilson_interval(len(calls), n)
    r_values = [c.r_factor if c.r_factor is not None else 0.0 for c in calls]
    mos_values = [
        c.mos if c.mos is not None else mos_from_r(r) for c, r in zip(calls, r_values, strict=True)
    ]
    r_med = median(r_values)
    pdd = [t.call.pdd_ms for t in trials if t.call is not None and t.call.pdd_ms is not None]
    pdd_p95 = percentile(pdd, 95)
    no_media = sum(1 for t in trials if _succeeded(t) and t.outcome == "no-media")
    losses = [x for x in (_worst(c, "loss_pct") for c in calls) if x is not None]
    jitters = [x for x in (_worst(c, "jitter_ms") for c in calls) if x is not None]
    setups = [c.setup_ms for c in calls if c.setup_ms is not None]

    said = _ratio_text(len(calls), n, "calls set up", "CSSR", ci)
    verdict, reason = _call_verdict(said, len(calls), n, ci, r_med, no_media, pdd_p95, th)
    return dict(
        kind="call",
        successes=len(calls),
        cssr=round(len(calls) / n, 4),
        cssr_ci=[round(ci[0], 4), round(ci[1], 4)],
        setup_ms_p50=_rnd(percentile(setups, 50), 1),
        setup_ms_p95=_rnd(percentile(setups, 95), 1),
        pdd_ms_p95=_rnd(pdd_p95, 1),
        mos_median=_rnd(median(mos_values), 3),
        r_median=_rnd(r_med, 2),
        r70_share=round(sum(r >= GOOD_R for r in r_values) / len(calls), 4) if calls else None,
        loss_pct_median=_rnd(median(losses), 3),
        jitter_ms_median=_rnd(median(jitters), 2),
        verdict=verdict,
        reason=reason,
    )


# ---------------------------------------------------------------- messages


def _measured_verdict(
    said: str,
    done: int,
    n: int,
    ci: tuple[float, float],
    measured_block: str | None,
    misses: list[str],
    th: Thresholds,
) -> tuple[CellVerdict, str]:
    """Messages and workloads: blocked with enough trials, or by a measured share
    (delivery, completeness) below the blocked limit; then a ratio too thin to decide; then
    measured quality below works; then the ratio's own verdict."""
    blocked = []
    if ci[1] < th.blocked_max_cssr_upper:
        blocked.append(f"CI upper bound {ci[1]:.2f} < {th.blocked_max_cssr_upper:.2f}")
    if measured_block:
        blocked.append(measured_block)
    if blocked:
        return "blocked", f"{said}: {'; '.join(blocked)}"
    candidate = _candidate(done / n, th)
    if candidate == "blocked":
        return "inconclusive", f"{said}: " + _undecided("blocked", candidate, done, n, ci, th)
    if misses:
        return "degraded", f"{said}; misses works: {'; '.join(misses)}"
    if not _supports(candidate, ci, th):
        return "inconclusive", f"{said}: " + _undecided(candidate, candidate, done, n, ci, th)
    if candidate == "degraded":
        return "degraded", f"{said}; misses works: {_below_works(ci, th)}"
    return "works", said


def _delivery_block(sent: int, delivery: float, th: Thresholds) -> str | None:
    if sent and delivery < th.blocked_max_delivery:
        return f"delivery {_pct(delivery)} < {_pct(th.blocked_max_delivery)}"
    return None


def _delivery_misses(sent: int, delivery: float, th: Thresholds) -> list[str]:
    if not sent:
        return ["no message sent to count"]
    if delivery < th.works_min_delivery:
        return [f"delivery {_pct(delivery)} < {_pct(th.works_min_delivery)}"]
    return []


def _score_messages(trials: Sequence[TrialResult], th: Thresholds) -> dict[str, Any]:
    n = len(trials)
    connected = [t.message for t in trials if _succeeded(t) and t.message is not None]
    ci = wilson_interval(len(connected), n)
    messages = [t.message for t in trials if t.message is not None]
    sent = sum(m.sent for m in messages)
    delivered = sum(m.delivered for m in messages)
    delivery = delivered / sent if sent else 0.0
    connects = [m.connect_ms for m in connected if m.connect_ms is not None]

    said = _ratio_text(len(connected), n, "sessions connected", "ratio", ci)
    said += (
        f", {delivered}/{sent} messages delivered ({_pct(delivery)})"
        if sent
        else ", no message sent"
    )
    verdict, reason = _measured_verdict(
        said,
        len(connected),
        n,
        ci,
        _delivery_block(sent, delivery, th),
        _delivery_misses(sent, delivery, th),
        th,
    )
    return dict(
        kind="message",
        successes=len(connected),
        cssr=round(len(connected) / n, 4),
        cssr_ci=[round(ci[0], 4), round(ci[1], 4)],
        setup_ms_p50=_rnd(percentile(connects, 50), 1),
        setup_ms_p95=_rnd(percentile(connects, 95), 1),
        delivery_ratio=round(delivery, 4) if sent else None,  # nothing sent: not measured
        verdict=verdict,
        reason=reason,
    )


# ---------------------------------------------------------------- workloads


def _workload_misses(
    completeness: float, throughput: float | None, load_p95: float | None, th: Thresholds
) -> list[str]:
    """Works limits the workloads measurably missed."""
    misses = []
    if completeness < th.works_min_delivery:
        misses.append(f"completeness {_pct(completeness)} < {_pct(th.works_min_delivery)}")
    if throughput is not None and throughput < th.works_min_throughput_mbps:
        misses.append(
            f"median throughput {throughput:.2f} < {th.works_min_throughput_mbps:g} Mbit/s"
        )
    if load_p95 is not None and load_p95 > th.works_max_load_p95_ms:
        misses.append(f"p95 duration {load_p95:.0f} ms > {th.works_max_load_p95_ms:g} ms")
    return misses


def _score_workloads(trials: Sequence[TrialResult], th: Thresholds) -> dict[str, Any]:
    n = len(trials)
    done: list[WorkloadMetrics] = [t.workload for t in trials if _succeeded(t) and t.workload]
    ci = wilson_interval(len(done), n)
    measured = [t.workload for t in trials if t.workload is not None]
    items = sum(w.items for w in measured)
    completeness = sum(w.completed for w in measured) / items if items else 0.0
    throughputs = [w.throughput_mbps for w in done if w.throughput_mbps is not None]
    durations = [w.duration_ms for w in done if w.duration_ms is not None]
    timed = [w.duration_ms for w in done if w.throughput_mbps is None and w.duration_ms]
    throughput, load_p95 = median(throughputs), percentile(timed, 95)

    said = _ratio_text(len(done), n, "workloads completed", "ratio", ci)
    said += f", {_pct(completeness)} of items done"
    if throughput is not None:
        said += f", median {throughput:.1f} Mbit/s"
    if load_p95 is not None:
        said += f", p95 {load_p95:.0f} ms"
    misses = _workload_misses(completeness, throughput, load_p95, th)
    incomplete = (
        f"completeness {_pct(completeness)} < {_pct(th.blocked_max_delivery)}"
        if completeness < th.blocked_max_delivery
        else None
    )
    verdict, reason = _measured_verdict(said, len(done), n, ci, incomplete, misses, th)
    return dict(
        kind="workload",
        successes=len(done),
        cssr=round(len(done) / n, 4),
        cssr_ci=[round(ci[0], 4), round(ci[1], 4)],
        setup_ms_p50=_rnd(percentile(durations, 50), 1),
        setup_ms_p95=_rnd(percentile(durations, 95), 1),
        completeness=round(completeness, 4) if items else None,
        throughput_mbps_median=_rnd(throughput, 2),
        verdict=verdict,
        reason=reason,
    )


# ---------------------------------------------------------------- harness faults


def _fault_of(trial: TrialResult) -> tuple[str, str, str]:
    """(kind, phase, detail) of a fault record; a record without its `fault` says so."""
    if trial.fault is None:
        return "unspecified", "unknown phase", trial.error or "no detail recorded"
    return trial.fault.kind, trial.fault.phase, trial.fault.detail


def _short(detail: str, chars: int = 120) -> str:
    line = detail.strip().splitlines()[0] if detail.strip() else "no detail"
    return line if len(line) <= chars else line[: chars - 3] + "..."


def _fault_text(ended: Sequence[TrialResult], trials: int, th: Thresholds) -> str:
    """Why a cell is invalid: how many trials the harness lost, and its most common fault."""
    kinds = Counter(_fault_of(t)[:2] for t in ended)
    (kind, phase), count = kinds.most_common(1)[0]
    detail = next(_fault_of(t)[2] for t in ended if _fault_of(t)[:2] == (kind, phase))
    share = len(ended) / trials
    limit = (
        "no valid trial left"
        if len(ended) == trials
        else f"{_pct(share)} > {_pct(th.max_fault_share)} allowed"
    )
    return (
        f"{len(ended)} of {trials} trials ended in a harness fault ({limit}), most often "
        f"{kind} in {phase} ({count}x): {_short(detail)}"
    )


def _faults_note(ended: int, retried: int, kinds: Counter[str]) -> str:
    """A scored cell's note on the faults it had: never censorship, not in any ratio."""
    parts = []
    if ended:
        parts.append(f"{_plural(ended, 'trial')} not scored")
    if retried:
        parts.append(f"{_plural(retried, 'attempt')} retried")
    listed = ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
    return f"harness faults (not censorship): {', '.join(parts)} ({listed})"


def _unscored(kind: Kind) -> dict[str, Any]:
    """The figures of a cell with no valid trial: nothing measured."""
    fields: dict[str, Any] = dict(kind=kind, successes=0, cssr=0.0, cssr_ci=[0.0, 1.0])
    if kind == "message":
        fields["delivery_ratio"] = None
    return fields


# ---------------------------------------------------------------- cells


def _kind(trials: Sequence[TrialResult], kind: Kind | None) -> Kind:
    has_call = any(t.call is not None for t in trials)
    has_message = any(t.message is not None for t in trials)
    has_workload = any(t.workload is not None for t in trials)
    if has_call + has_message + has_workload > 1:
        raise ValueError("a cell mixes call, message and workload trials")
    seen: Kind | None = (
        "call" if has_call else "message" if has_message else "workload" if has_workload else None
    )
    if kind is not None and seen is not None and kind != seen:
        raise ValueError(f"cell declared {kind} but its trials are {seen} trials")
    if kind is None and seen is None:
        raise ValueError(
            f"cell of app {trials[0].app!r}: no trial carries metrics; give its kind "
            "(score_cells(..., kinds=registry.app_kinds(apps)))"
        )
    return kind or seen  # type: ignore[return-value]


def score_cell(
    trials: Sequence[TrialResult], thresholds: Thresholds | None = None, kind: Kind | None = None
) -> CellScore:
    """Score the records of one cell: every attempt, as results.jsonl holds them (a trial
    counts by its last attempt that was not a harness fault). `kind` is needed only if no
    record carries metrics (every trial failed early); otherwise it is read from them."""
    if not trials:
        raise ValueError("a cell needs at least one trial")
    cells = {t.cell for t in trials}
    if len(cells) > 1:
        raise ValueError(f"trials of several cells given: {sorted(cells)}")
    th = thresholds if thresholds is not None else Thresholds()
    censor, tool, app = trials[0].cell
    final = final_attempts(trials)
    valid = [t for t in final if not t.is_fault]
    ended = [t for t in final if t.is_fault]
    fault_kinds = Counter(_fault_of(t)[0] for t in trials if t.is_fault)
    cell_kind = _kind(final, kind)
    scorer = {"call": _score_calls, "message": _score_messages, "workload": _score_workloads}[
        cell_kind
    ]
    fields = scorer(valid, th) if valid else _unscored(cell_kind)
    invalid = not valid or len(ended) / len(final) > th.max_fault_share
    if invalid:
        fields["verdict"], fields["reason"] = "invalid", _fault_text(ended, len(final), th)
        if valid:
            fields["reason"] += f"; no verdict (the figures are of the {len(valid)} valid trials)"
    outcomes = Counter(t.outcome for t in final)
    if failures := outcomes.get("tool-failure"):
        fields["reason"] += f"; {_plural(failures, 'tool failure')}"
    if fault_kinds and not invalid:
        retried = sum(fault_kinds.values()) - len(ended)
        fields["reason"] += "; " + _faults_note(len(ended), retried, fault_kinds)
    fields["reason"] += "."
    return CellScore(
        censor=censor,
        tool=tool,
        app=app,
        trials=len(final),
        valid_trials=len(valid),
        outcomes=dict(outcomes),
        faults=len(ended),
        fault_attempts=sum(fault_kinds.values()),
        fault_kinds=dict(fault_kinds),
        **fields,
    )


def score_cells(
    results: Iterable[TrialResult],
    thresholds: Thresholds | None = None,
    kinds: Mapping[str, Kind] | None = None,
) -> list[CellScore]:
    """Score every (censor, tool, app) cell, in the order cells first appear. `results`
    are every attempt's records (retried trials included).

    `kinds` maps app name -> "call" | "message" | "workload" for cells whose trials carry no
    metrics.
    """
    groups: dict[tuple[str, str, str], list[TrialResult]] = {}
    for result in results:
        groups.setdefault(result.cell, []).append(result)
    return [
        score_cell(trials, thresholds, (kinds or {}).get(cell[2]))
        for cell, trials in groups.items()
    ]
