"""The `baresip` app: the real, unmodified baresip 1.0 calling through Kamailio.

Placed like the `sip` app, so the two are measured in the same cells: Kamailio and the
callee (auto-answer) on `voip`, the caller on `client`. Each instance has its own config
directory in the trial directory and is driven over ctrl_tcp by an agent in its host
(harness.apps.baresip.agent). baresip has no proxy setting: it runs direct, or through a
tool that routes the client host (a VPN, `<tool>+tun`); a proxy-only tool is refused.

Per direction, loss is the sender's packet counter against the receiver's (baresip's
rtp_stats table), over the whole call, as the `sip` app counts it: both instances stop
sending before the hang-up and the call ends once what was in flight has arrived (see the
agent). Jitter is the receiver's RFC 3550 interarrival jitter as of the last RTCP report
it got from its peer (baresip takes that snapshot when a report arrives, every 5 s): a call
shorter than 5 s, or one whose reports a censor dropped, has no jitter figure (0, and the
error text says so). baresip stamps arrivals with its 1 ms clock and its `ausine` source
wakes every 4 ms, so its jitter on an idle network is about 1 ms where the `sip` app's is
well under one. One-way delay is half the RTCP round trip when a report carried one (none
before the second round of reports); baresip reports no burst ratio (1.0, random loss).
"""

from __future__ import annotations

from typing import Any

from harness.apps.baresip.config import BaresipConfig, account_line, write_config_dir
from harness.apps.base import App, result_of
from harness.apps.sip.app import signalling_metrics, start_kamailio
from harness.media.rating import rate_call
from harness.results import CallMetrics, DirectionStats, TrialResult
from harness.tools.capabilities import check_routed
from harness.topology.base import fqdn
from harness.trial import TrialContext

AGENT = "harness.apps.baresip.agent"
CALLER, CALLEE = "alice", "bob"
CALLEE_SIP_PORT = 5062  # Kamailio has 5060 on `voip`
CALLER_SIP_PORT = 5060
NO_RTCP = (
    "jitter not measured in the {0} direction: its receiver got no RTCP report from the "
    "peer (sent every 5 s; the call was shorter, or a censor dropped them)"
)


class BaresipApp(App):
    name = "baresip"
    binaries = {"baresip": "baresip-core", "kamailio": "kamailio"}

    def start_servers(self, ctx: TrialContext) -> None:
        check_routed(self.name, ctx.tool)  # before anything starts
        voip = start_kamailio(ctx)
        config = BaresipConfig(voip.addr, CALLEE_SIP_PORT, f"{ctx.topology.addr('dns')}:53")
        directory = write_config_dir(ctx.dir / "baresip-callee", config)
        self.callee = ctx.supervisor.start(
            voip,
            "baresip-callee",
            ctx.agent(
                AGENT, "callee",
                "--config-dir", str(directory),
                "--account", account_line(CALLEE, fqdn("voip"), answer_auto=True),
                "--ctrl-port", str(config.ctrl_port),
                "--max-wait", str(self._budget(ctx) + 10),
                "--media-seconds", str(ctx.scenario.call_seconds),
            ),
        )  # fmt: skip
        self.callee.wait_for_event("registered", 10)

    def _budget(self, ctx: TrialContext) -> float:
        return 5 + ctx.scenario.baresip.setup_timeout_s + ctx.scenario.call_seconds + 10

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        if ctx.endpoint.socks:
            check_routed(self.name, ctx.tool)  # a proxy port and no routing: never run it direct
        opts = ctx.scenario.baresip
        client = ctx.topology["client"]
        config = BaresipConfig(client.addr, CALLER_SIP_PORT, f"{ctx.topology.addr('resolver')}:53")
        directory = write_config_dir(ctx.dir / "baresip-caller", config)
        caller = ctx.supervisor.start(
            client,
            "baresip-caller",
            ctx.agent(
                AGENT, "caller",
                "--config-dir", str(directory),
                "--account", account_line(CALLER, fqdn("voip"), answer_auto=False),
                "--ctrl-port", str(config.ctrl_port),
                "--target", f"sip:{CALLEE}@{fqdn('voip')}",
                "--duration", str(ctx.scenario.call_seconds),
                "--setup-timeout", str(opts.setup_timeout_s),
            ),
        )  # fmt: skip
        mine = result_of(caller, self._budget(ctx))
        theirs = result_of(self.callee, 8 if mine.get("setup_ok") else 0, stop=True)
        result.logs["caller"] = str(caller.stdout_path)
        result.logs["callee"] = str(self.callee.stdout_path)
        for role, report in (("caller", mine), ("callee", theirs)):
            if report.get("log"):
                result.logs[f"baresip-{role}"] = report["log"]
        result.call = merge_call(mine, theirs, opts.codec)
        result.outcome = mine.get("outcome", "error")
        notes = [mine.get("error"), *_notes(mine, theirs)]
        result.error = "; ".join(n for n in notes if n) or None


def _notes(caller: dict[str, Any], callee: dict[str, Any]) -> list[str]:
    if not caller.get("setup_ok"):
        return []
    return [NO_RTCP.format(d) for d, rx in (("up", callee), ("down", caller)) if not rx.get("rtcp")]


def _packets(report: dict[str, Any], side: str) -> int:
    return int(((report.get("table") or {}).get(side) or {}).get("packets", 0))


def direction(receiver: dict[str, Any], sender: dict[str, Any]) -> DirectionStats | None:
    """One direction: loss from the two packet counters, jitter (and, with a round trip,
    delay) from the receiver's last RTCP snapshot."""
    if receiver.get("table") is None or sender.get("table") is None:
        return None
    sent, received = _packets(sender, "tx"), _packets(receiver, "rx")
    stats = DirectionStats(sent=sent, received=received, expected=sent)
    stats.lost = max(sent - received, 0)
    if sent > 0:
        stats.loss_pct = round(100.0 * stats.lost / sent, 3)
    rtcp = receiver.get("rtcp") or {}
    rx = rtcp.get("rx") or {}
    if rx.get("sent"):
        stats.jitter_ms = round(float(rx.get("jit", 0)) / 1000.0, 4)  # microseconds
        if rtcp.get("rtt"):  # 0: no report has carried a round trip yet
            stats.owd_ms_mean = round(float(rtcp["rtt"]) / 2000.0, 3)
    return stats


def merge_call(caller: dict[str, Any], callee: dict[str, Any], codec: str) -> CallMetrics:
    call = signalling_metrics(caller, "udp", codec)
    if not call.setup_ok:
        return call
    call.up = direction(callee, caller)
    call.down = direction(caller, callee)
    return rate_call(call, codec)
