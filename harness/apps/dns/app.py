"""The `dns` bystander app: every ordinary name of the run zone (the servers' names and
www, static, cdn, updates) resolved from the client through the inside resolver, each
answer compared with the authoritative record the run's DNS server holds. The resolver and
the authoritative server are the run's own (harness/topology/dns.py): this app starts no
server. Name lookups go to the resolver, never to a tool: a user's system resolver does."""

from __future__ import annotations

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.web.app import workload_of
from harness.results import TrialResult
from harness.topology.dns import zone_records
from harness.trial import TrialContext

AGENT = "harness.apps.dns.agent"


class DnsApp(App):
    name = "dns"

    def warm_up(self, ctx: TrialContext) -> None:
        self.warm_client = WarmAgent(ctx, ctx.topology["client"], "stub", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        """None of its own: the run's resolver and authoritative server are up already."""

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.dns
        records = [f"{name}={addr}" for name, addr in zone_records(ctx.topology).items()]
        args = [
            "--resolver", ctx.topology.addr("resolver"),
            "--timeout", str(opts.timeout_s),
            "--attempts", str(opts.attempts),
            *records,
        ]  # fmt: skip
        client = self.warm_client.go(*args)
        mine = result_of(client, len(records) * opts.timeout_s * opts.attempts + 10)
        result.logs["stub"] = str(client.stdout_path)
        if mine.get("items") is not None:
            result.workload = workload_of(mine)
        result.outcome = mine.get("outcome", "error")  # type: ignore[assignment]
        result.error = mine.get("error")  # type: ignore[assignment]
