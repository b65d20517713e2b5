"""The `xmpp` app: Prosody on `chat` with a certificate from the run's CA, a receiver
client outside (on `chat`) and a sender inside that goes through the tool's SOCKS5 when
there is one. XMPP is TCP only: it is the reference for "chat still works"."""

from __future__ import annotations

import secrets

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.xmpp.prosody import ProsodyConfig, prepare, prosody_argv
from harness.results import MessageMetrics, TrialResult
from harness.topology.base import fqdn
from harness.trial import TrialContext

AGENT = "harness.apps.xmpp.agent"
SENDER, RECEIVER = "alice", "bob"


class XmppApp(App):
    name = "xmpp"
    binaries = {"prosody": "prosody"}

    def warm_up(self, ctx: TrialContext) -> None:
        self.warm_receiver = WarmAgent(ctx, ctx.topology["chat"], "receiver", AGENT)
        self.warm_sender = WarmAgent(ctx, ctx.topology["client"], "sender", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        chat = ctx.topology["chat"]
        domain = fqdn("chat")
        cert, key = ctx.ca.issue("chat", [domain], [chat.addr], out_dir=ctx.dir)
        self.password = secrets.token_hex(12)  # never starts with "-" (argparse)
        cfg = ProsodyConfig(ctx.dir / "prosody", chat.addr, domain)
        prepare(cfg, cert, key, {SENDER: self.password, RECEIVER: self.password})
        prosody = ctx.supervisor.start(chat, "prosody", prosody_argv(cfg))
        prosody.wait_for_line(cfg.ready_pattern, 10)
        self.receiver = self.warm_receiver.go(
            "receiver",
            *self._common(ctx, domain, chat.addr, RECEIVER),
            "--max-wait", str(self._budget(ctx) + 10),
        )  # fmt: skip
        self.receiver.wait_for_event("ready", 15)

    def _common(self, ctx: TrialContext, domain: str, server: str, user: str) -> list[str]:
        return [
            "--ca", str(ctx.ca.cert_path),
            "--server", server,
            "--domain", domain,
            "--jid", f"{user}@{domain}",
            "--password", self.password,
        ]  # fmt: skip

    def _budget(self, ctx: TrialContext) -> float:
        opts = ctx.scenario.xmpp
        return 2 * opts.timeout_s + opts.messages * opts.interval_ms / 1000 + 5

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.xmpp
        domain = fqdn("chat")
        args = [
            "sender",
            *self._common(ctx, domain, domain, SENDER),
            "--resolver", ctx.topology.addr("resolver"),
            "--to", f"{RECEIVER}@{domain}",
            "--count", str(opts.messages),
            "--interval-ms", str(opts.interval_ms),
            "--timeout", str(opts.timeout_s),
            *ctx.endpoint.agent_args(udp=False),
        ]  # fmt: skip
        sender = self.warm_sender.go(*args)
        mine = result_of(sender, self._budget(ctx))
        self.receiver.stop()
        result.logs["sender"] = str(sender.stdout_path)
        result.message = MessageMetrics(
            **{k: mine[k] for k in MessageMetrics.model_fields if mine.get(k) is not None}
        )
        result.outcome = mine.get("outcome", "error")
        result.error = mine.get("error")
