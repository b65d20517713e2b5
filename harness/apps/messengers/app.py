"""The App side shared by the messenger profiles: their server on `chat`, their client
agent on `client`, the agent's result copied into MessageMetrics (as the xmpp app does)."""

from __future__ import annotations

from typing import Any, ClassVar

from harness.apps.base import App, WarmAgent, result_of
from harness.results import MessageMetrics, TrialResult
from harness.topology.base import fqdn
from harness.trial import TrialContext

AGENT = "harness.apps.messengers.agent"
SERVER_READY_S = 15.0


class MessengerApp(App):
    profile: ClassVar[str]  # the agent's --profile
    options_field: ClassVar[str]  # the Scenario field holding this profile's options

    def options(self, ctx: TrialContext) -> Any:
        return getattr(ctx.scenario, self.options_field)

    def server_args(self, ctx: TrialContext) -> list[str]:
        """Extra arguments of the server agent (certificates, ...)."""
        return []

    def client_args(self, ctx: TrialContext) -> list[str]:
        """--server (and how to reach it) plus the profile's own client arguments."""
        raise NotImplementedError

    @staticmethod
    def zone_name() -> str:
        """The server's name in the run zone, looked up the way the real app looks up
        g.whatsapp.net or chat.signal.org."""
        return fqdn("chat")

    @staticmethod
    def by_name(ctx: TrialContext, name: str) -> list[str]:
        """Reach the server by name through the run's resolver (through a tool, the tool's
        far side resolves it: the agent skips --resolver when it has --socks)."""
        return ["--server", name, "--resolver", ctx.topology.addr("resolver")]

    def _budget(self, ctx: TrialContext) -> float:
        opts = self.options(ctx)
        return 2 * opts.timeout_s + opts.messages * opts.interval_ms / 1000 + 5

    def warm_up(self, ctx: TrialContext) -> None:
        chat, client = ctx.topology["chat"], ctx.topology["client"]
        self.warm_server = WarmAgent(ctx, chat, f"{self.profile}-server", AGENT)
        self.warm_client = WarmAgent(ctx, client, f"{self.profile}-client", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        chat = ctx.topology["chat"]
        opts = self.options(ctx)
        self.server = self.warm_server.go(
            "server", "--profile", self.profile,
            "--listen", chat.addr, "--port", str(opts.port), *self.server_args(ctx),
        )  # fmt: skip
        self.server.wait_for_event("ready", SERVER_READY_S)

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = self.options(ctx)
        args = [
            "client", "--profile", self.profile, "--port", str(opts.port),
            "--count", str(opts.messages), "--interval-ms", str(opts.interval_ms),
            "--timeout", str(opts.timeout_s), *self.client_args(ctx),
            *ctx.endpoint.agent_args(udp=False),
        ]  # fmt: skip
        client = self.warm_client.go(*args)
        mine = result_of(client, self._budget(ctx))
        self.server.stop()
        result.logs["client"] = str(client.stdout_path)
        result.logs["server"] = str(self.server.stdout_path)
        result.message = MessageMetrics(
            **{k: mine[k] for k in MessageMetrics.model_fields if mine.get(k) is not None}
        )
        result.outcome = mine.get("outcome", "error")
        result.error = mine.get("error")
