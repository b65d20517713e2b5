"""The `webrtc` app: coturn on `voip`, the signalling WebSocket/TLS server on `chat` (or the
host the scenario names), an aiortc callee outside on `front`, an aiortc caller inside.

The caller tries the ICE attempts of the scenario's policy (ice.py) and reports which one
connected and the selected candidate pair; both agents report their audio figures, merged
here into per-direction loss, jitter and one-way delay and an E-model score of the worse
direction. Opus has no ITU-T impairment values: its R and MOS use research values
(emodel.py `opus-nb-research`) and the result says so (`webrtc.emodel_research_values`).
"""

from __future__ import annotations

from typing import Any

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.webrtc import coturn
from harness.media.rating import rate_call
from harness.results import CallMetrics, DirectionStats, TrialResult, WebRtcMetrics, WebRtcPair
from harness.scoring.emodel import get_codec
from harness.topology.base import fqdn
from harness.trial import TrialContext

AGENT = "harness.apps.webrtc.agent"
SIGNALLING = "harness.apps.webrtc.signalling"
SIGNAL_PORT = 443
CALLEE_HOST = "front"
EMODEL_CODEC = {"opus": "opus-nb-research", "pcmu": "g711"}  # aiortc's PCMU has no PLC
OWD_METHOD = (
    "data-channel probes every 20 ms (unordered, no retransmission) carrying the sender's "
    "wall clock, on the audio's ICE pair and DTLS session; hosts share one clock "
    "(harness/apps/webrtc/media.py)"
)


class WebRtcApp(App):
    name = "webrtc"
    binaries = {coturn.BINARY: coturn.PACKAGE}

    def warm_up(self, ctx: TrialContext) -> None:
        """aiortc takes ~1.5 s to import: the agents do it while the servers come up."""
        sig_host = ctx.topology[ctx.scenario.webrtc.signalling_host]
        self.warm_signalling = WarmAgent(ctx, sig_host, "signalling", SIGNALLING)
        self.warm_callee = WarmAgent(ctx, ctx.topology[CALLEE_HOST], "callee", AGENT)
        self.warm_caller = WarmAgent(ctx, ctx.topology["client"], "caller", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        opts = ctx.scenario.webrtc
        self.turn_user, self.turn_password = coturn.start(ctx)
        sig_host = ctx.topology[opts.signalling_host]
        self.sni = opts.server_name or fqdn(opts.signalling_host)
        names = list(dict.fromkeys([self.sni, fqdn(opts.signalling_host)]))
        cert, key = ctx.ca.issue("signalling", names, [sig_host.addr], out_dir=ctx.dir)
        server = self.warm_signalling.go(
            "--bind", sig_host.addr, "--port", str(SIGNAL_PORT),
            "--cert", str(cert), "--key", str(key),
        )  # fmt: skip
        server.wait_for_event("ready", 10)
        self.callee = self.warm_callee.go(
            "callee",
            *self._common(ctx),
            "--signal-host", sig_host.addr,
            "--max-wait", str(self._budget(ctx) + 10),
        )  # fmt: skip
        self.callee.wait_for_event("ready", 10)

    def _common(self, ctx: TrialContext) -> list[str]:
        opts = ctx.scenario.webrtc
        return [
            "--sni", self.sni,
            "--port", str(SIGNAL_PORT),
            "--ca", str(ctx.ca.cert_path),
            "--codec", opts.codec,
            "--setup-timeout", str(opts.setup_timeout_s),
        ]  # fmt: skip

    def _budget(self, ctx: TrialContext) -> float:
        opts = ctx.scenario.webrtc
        return opts.setup_timeout_s + 3 * opts.attempt_timeout_s + ctx.scenario.call_seconds + 10

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.webrtc
        args = [
            "caller",
            *self._common(ctx),
            "--signal-host", fqdn(opts.signalling_host),
            "--resolver", ctx.topology.addr("resolver"),
            "--policy", opts.ice_policy,
            "--turn-ip", ctx.topology.addr("voip"),
            "--turn-user", self.turn_user,
            "--turn-password", self.turn_password,
            "--attempt-timeout", str(opts.attempt_timeout_s),
            "--duration", str(ctx.scenario.call_seconds),
            *ctx.endpoint.agent_args(),
        ]  # fmt: skip
        caller = self.warm_caller.go(*args)
        mine = result_of(caller, self._budget(ctx))
        theirs = result_of(self.callee, 5 if mine.get("setup_ok") else 0, stop=True)
        result.logs["caller"] = str(caller.stdout_path)
        result.logs["callee"] = str(self.callee.stdout_path)
        peer = mine.get("peer") or theirs
        result.call = merge_call(mine, peer, opts.codec)
        result.webrtc = webrtc_metrics(mine, opts.ice_policy, opts.codec)
        result.outcome = mine.get("outcome", "error")
        result.error = mine.get("error")


def _direction(rx: dict[str, Any] | None, sent: int, owd: dict[str, Any] | None) -> DirectionStats:
    rx = rx or {}
    stats = DirectionStats(
        sent=sent,
        received=int(rx.get("received") or 0),
        expected=int(rx.get("expected") or 0),
        lost=max(int(rx.get("lost") or 0), 0),
        jitter_ms=float(rx.get("jitter_ms") or 0.0),
        burst_r=float(rx.get("burst_r") or 1.0),
        mean_burst_len=float(rx.get("mean_burst_len") or 0.0),
        owd_ms_mean=(owd or {}).get("mean_ms"),
        owd_ms_p95=(owd or {}).get("p95_ms"),
    )
    if sent > 0:  # against what was really sent: RFC 3550's count misses lost tail packets
        stats.loss_pct = round(100.0 * max(sent - stats.received, 0) / sent, 3)
    return stats


def merge_call(caller: dict[str, Any], callee: dict[str, Any], codec: str) -> CallMetrics:
    """CallMetrics of a webrtc trial, in SIP's terms: `registered`/`register_ms` are the
    signalling connection (there is no registrar); `setup_ok` is an answer received (the
    callee "picked up"); `pdd_ms` is the first offer -> its answer (the callee rings on the
    offer); `setup_ms` is the time to connected: first attempt's start -> DTLS done,
    failed attempts included (None when no attempt connected)."""
    call = CallMetrics(
        registered=bool(caller.get("signalling_ok")),
        register_ms=caller.get("signalling_ms"),
        setup_ok=bool(caller.get("setup_ok")),
        pdd_ms=caller.get("answer_ms"),
        setup_ms=time_to_connected(caller),
        media_s=caller.get("media_s") or 0.0,
        transport=caller.get("winner") or "none",
        codec=EMODEL_CODEC[codec],
    )
    if not caller.get("dtls_done"):
        return call
    call.up = _direction(callee.get("rx"), int(caller.get("rtp_sent") or 0), callee.get("owd"))
    call.down = _direction(caller.get("rx"), int(callee.get("rtp_sent") or 0), caller.get("owd"))
    return rate_call(call, call.codec)


def time_to_connected(caller: dict[str, Any]) -> float | None:
    """First attempt's start -> DTLS done on the winning one (ms)."""
    if caller.get("connected_ms") is None:
        return None
    earlier = sum(float(a.get("ms") or 0.0) for a in (caller.get("attempts") or [])[:-1])
    return round(earlier + float(caller["connected_ms"]), 3)


def webrtc_metrics(caller: dict[str, Any], policy: str, codec: str) -> WebRtcMetrics:
    attempts = caller.get("attempts") or []
    if caller.get("winner"):
        ice_result = "connected"
    elif not attempts:
        ice_result = "not-tried"
    else:
        ice_result = str(attempts[-1].get("outcome") or "failed")
    pair = caller.get("selected_pair")
    entry = get_codec(EMODEL_CODEC[codec])
    return WebRtcMetrics(
        ice_policy=policy,
        ice_result=ice_result,
        attempts=attempts,
        winner=caller.get("winner"),
        selected_pair=WebRtcPair(**pair) if pair else None,
        signalling_ms=caller.get("signalling_ms"),
        ice_connected_ms=caller.get("ice_connected_ms"),
        connected_ms=caller.get("connected_ms"),
        time_to_connected_ms=time_to_connected(caller),
        dtls_done=bool(caller.get("dtls_done")),
        owd_method=OWD_METHOD,
        emodel_codec=entry.name,
        emodel_codec_source=entry.source,
        emodel_research_values=entry.research,
        via_proxy=caller.get("via_proxy") or [],
    )
