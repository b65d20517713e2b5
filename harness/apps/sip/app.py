"""The `sip` app: Kamailio on `voip`, a callee UA outside (on `voip`), a caller UA inside.

The caller goes through the tool when there is one: SIP over TCP through SOCKS5 CONNECT,
SIP over UDP and RTP through UDP ASSOCIATE when the tool relays UDP. The two agents' reports
are merged into per-direction media figures and an E-model score of the worse direction.
"""

from __future__ import annotations

from typing import Any

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.sip.kamailio import kamailio_argv, kamailio_config
from harness.media.rating import rate_call
from harness.results import CallMetrics, DirectionStats, TrialResult
from harness.topology.base import Host, fqdn
from harness.trial import TrialContext

AGENT = "harness.apps.sip.agent"
SIP_PORT = 5060
CALLER, CALLEE = "alice", "bob"


def start_kamailio(ctx: TrialContext) -> Host:
    """Kamailio (registrar + proxy for the run zone's `voip` name) on `voip`, ready when
    its SIP port is open; shared by every app that calls through it. Returns `voip`."""
    voip = ctx.topology["voip"]
    cfg = ctx.dir / "kamailio.cfg"
    cfg.write_text(kamailio_config(voip.addr, SIP_PORT, fqdn("voip")))
    runtime = ctx.dir / "kamailio-run"
    runtime.mkdir(exist_ok=True)
    kamailio = ctx.supervisor.start(voip, "kamailio", kamailio_argv(cfg, runtime))
    kamailio.wait_until(lambda: voip.listening(SIP_PORT, "udp"), 5, "SIP port open")
    return voip


class SipApp(App):
    name = "sip"
    binaries = {"kamailio": "kamailio"}

    def warm_up(self, ctx: TrialContext) -> None:
        self.warm_callee = WarmAgent(ctx, ctx.topology["voip"], "callee", AGENT)
        self.warm_caller = WarmAgent(ctx, ctx.topology["client"], "caller", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        voip = start_kamailio(ctx)
        opts = ctx.scenario.sip
        self.callee = self.warm_callee.go(
            "callee",
            "--registrar", f"{voip.addr}:{SIP_PORT}",
            "--domain", fqdn("voip"),
            "--user", CALLEE,
            "--bind", voip.addr,
            "--transport", opts.transport,
            "--max-wait", str(self._budget(ctx) + 10),
        )  # fmt: skip
        self.callee.wait_for_event("registered", 10)

    def _budget(self, ctx: TrialContext) -> float:
        return 5 + ctx.scenario.sip.setup_timeout_s + ctx.scenario.call_seconds + 5

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.sip
        args = [
            "caller",
            "--registrar", f"{fqdn('voip')}:{SIP_PORT}",
            "--resolver", ctx.topology.addr("resolver"),
            "--domain", fqdn("voip"),
            "--user", CALLER,
            "--callee", CALLEE,
            "--bind", ctx.topology.addr("client"),
            "--transport", opts.transport,
            "--duration", str(ctx.scenario.call_seconds),
            "--setup-timeout", str(opts.setup_timeout_s),
            *ctx.endpoint.agent_args(),
        ]  # fmt: skip
        caller = self.warm_caller.go(*args)
        mine = result_of(caller, self._budget(ctx))
        # Without a call the callee has nothing to wait for: stop it (it still reports).
        theirs = result_of(self.callee, 5 if mine.get("setup_ok") else 0, stop=True)
        result.logs["caller"] = str(caller.stdout_path)
        result.logs["callee"] = str(self.callee.stdout_path)
        result.call = merge_call(mine, theirs, opts.transport, opts.codec)
        result.outcome = mine.get("outcome", "error")
        result.error = mine.get("error")


def _direction(rx: dict[str, Any] | None, sent: int) -> DirectionStats | None:
    if rx is None:
        return None
    fields = {k: v for k, v in rx.items() if k in DirectionStats.model_fields}
    stats = DirectionStats(**fields)
    stats.sent = sent
    if sent > 0:
        # Loss against what was really sent: RFC 3550's count misses lost tail packets.
        stats.loss_pct = round(100.0 * max(sent - stats.received, 0) / sent, 3)
    return stats


def signalling_metrics(caller: dict[str, Any], transport: str, codec: str) -> CallMetrics:
    """The SIP half of a call's metrics, from the caller's report (any SIP UA's)."""
    return CallMetrics(
        registered=bool(caller.get("registered")),
        register_ms=caller.get("register_ms"),
        setup_ok=bool(caller.get("setup_ok")),
        final_status=caller.get("final_status"),
        pdd_ms=caller.get("pdd_ms"),
        setup_ms=caller.get("setup_ms"),
        media_s=caller.get("media_s") or 0.0,
        transport=transport,
        codec=codec,
    )


def merge_call(
    caller: dict[str, Any], callee: dict[str, Any], transport: str, codec: str
) -> CallMetrics:
    call = signalling_metrics(caller, transport, codec)
    if not call.setup_ok:
        return call
    call.up = _direction(callee.get("rx"), int(caller.get("rtp_sent") or 0))
    call.down = _direction(caller.get("rx"), int(callee.get("rtp_sent") or 0))
    return rate_call(call, codec)
