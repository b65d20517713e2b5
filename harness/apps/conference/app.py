"""The `conference` bystander app: a business-style WebRTC meeting.

coturn runs on `voip` (UDP/TCP 3478, TLS 443) and the signalling WebSocket/TLS server on
`chat` (443, the `webrtc` app's relay); `conference.participants` aiortc agents run on
the client host, each its own process with its own signalling connection, and meet in a
full mesh whose every peer connection is relay-only through coturn over
`conference.turn_transport`, as managed meeting clients are configured. Every stream
therefore crosses the censor twice (up to coturn, back down to its receiver): STUN/TURN,
DTLS-SRTP and, over TCP/TLS, TURN framing are what the censor sees.

A workload: the items are the n * (n - 1) streams, done when received within
`max_loss_pct`; the duration is the meeting's join time (metrics.py). Per participant and
per stream detail is in `conference` of the trial's result.
"""

from __future__ import annotations

import time
from typing import Any

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.conference.metrics import merge, outcome
from harness.apps.webrtc import coturn
from harness.results import TrialResult
from harness.topology.base import fqdn
from harness.trial import TrialContext

AGENT = "harness.apps.conference.agent"
SIGNALLING = "harness.apps.webrtc.signalling"
SIGNAL_HOST = "chat"
SIGNAL_PORT = 443
STATS_SLACK_S = 10.0  # linger, stats, closing the peer connections


class ConferenceApp(App):
    name = "conference"
    binaries = {coturn.BINARY: coturn.PACKAGE}

    def warm_up(self, ctx: TrialContext) -> None:
        """Each participant imports aiortc (~1.5 s) while the servers come up."""
        client = ctx.topology["client"]
        self.warm_signalling = WarmAgent(ctx, ctx.topology[SIGNAL_HOST], "signalling", SIGNALLING)
        self.warm = [
            WarmAgent(ctx, client, f"participant{i}", AGENT)
            for i in range(ctx.scenario.conference.participants)
        ]

    def start_servers(self, ctx: TrialContext) -> None:
        self.turn_user, self.turn_password = coturn.start(ctx)
        host = ctx.topology[SIGNAL_HOST]
        cert, key = ctx.ca.issue("signalling", [fqdn(SIGNAL_HOST)], [host.addr], out_dir=ctx.dir)
        server = self.warm_signalling.go(
            "--bind", host.addr, "--port", str(SIGNAL_PORT),
            "--cert", str(cert), "--key", str(key),
        )  # fmt: skip
        server.wait_for_event("ready", 10)

    def _args(self, ctx: TrialContext, index: int) -> list[str]:
        opts = ctx.scenario.conference
        return [
            "--index", str(index),
            "--participants", str(opts.participants),
            "--signal-host", fqdn(SIGNAL_HOST),
            "--sni", fqdn(SIGNAL_HOST),
            "--port", str(SIGNAL_PORT),
            "--ca", str(ctx.ca.cert_path),
            "--resolver", ctx.topology.addr("resolver"),
            "--turn-ip", ctx.topology.addr("voip"),
            "--turn-user", self.turn_user,
            "--turn-password", self.turn_password,
            "--transport", opts.turn_transport,
            "--codec", opts.codec,
            "--join-timeout", str(opts.join_timeout_s),
            "--duration", str(ctx.scenario.call_seconds),
            *ctx.endpoint.agent_args(udp=opts.turn_transport == "udp"),
        ]  # fmt: skip

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.conference
        procs = [warm.go(*self._args(ctx, i)) for i, warm in enumerate(self.warm)]
        # join, media, waiting for the others' hang-up (as long again), stats
        budget = 2 * (opts.join_timeout_s + ctx.scenario.call_seconds) + STATS_SLACK_S
        deadline = time.monotonic() + budget
        lines: list[dict[str, Any]] = []
        for i, proc in enumerate(procs):
            lines.append(result_of(proc, max(deadline - time.monotonic(), 1.0)))
            result.logs[f"participant{i}"] = str(proc.stdout_path)
        result.conference, result.workload = merge(lines, opts.turn_transport, opts.max_loss_pct)
        result.outcome, result.error = outcome(lines, result.workload)  # type: ignore[assignment]
