"""The `download` bystander app: a software update of `download.size_mb` MiB on an HTTPS
server outside (updates.<zone> on `voip`, a run-CA leaf) that publishes its SHA-256, fetched
from inside by curl (through the tool's SOCKS5 when there is one) and verified. Throughput
and completion show what a throttle or a port block does to the bulk traffic it spares or
not."""

from __future__ import annotations

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.web.app import start_site, workload_of
from harness.results import TrialResult
from harness.topology.base import fqdn
from harness.trial import TrialContext

AGENT = "harness.apps.download.agent"
HOST = fqdn("updates")
PATH = "/update.bin"


class DownloadApp(App):
    name = "download"
    binaries = {"curl": "curl"}

    def warm_up(self, ctx: TrialContext) -> None:
        self.warm_client = WarmAgent(ctx, ctx.topology["client"], "updater", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        size = int(ctx.scenario.download.size_mb * 2**20)
        start_site(ctx, ctx.topology["voip"], [HOST], ["--blob", f"{PATH}:{size}"])

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.download
        args = [
            "--url", f"https://{HOST}{PATH}",
            "--ca", str(ctx.ca.cert_path),
            "--timeout", str(opts.timeout_s),
            *(["--socks", ctx.endpoint.socks] if ctx.endpoint.socks else []),
        ]  # fmt: skip
        client = self.warm_client.go(*args)
        mine = result_of(client, opts.timeout_s + 15)
        result.logs["updater"] = str(client.stdout_path)
        if mine.get("items") is not None:
            result.workload = workload_of(mine)
        result.outcome = mine.get("outcome", "error")  # type: ignore[assignment]
        result.error = mine.get("error")  # type: ignore[assignment]
