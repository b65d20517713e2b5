"""The `web` bystander app: an HTTPS site served from outside (www and static on `chat`,
cdn on `voip`, real TLS with leaves from the run CA) and loaded from inside by curl,
through the tool's SOCKS5 when there is one. What a censor that claims to spare the web
breaks of it shows in completeness (resources fetched / resources) and page-load time."""

from __future__ import annotations

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.curl import batches
from harness.apps.web.site import CDN_HOST, PAGE_HOST, STATIC_HOST, write_site
from harness.results import TrialResult, WorkloadMetrics
from harness.topology.base import Host
from harness.topology.process import ManagedProcess
from harness.trial import TrialContext

AGENT = "harness.apps.web.agent"
SITE = "harness.apps.https_site"
SERVER_READY_S = 10


def start_site(
    ctx: TrialContext, host: Host, names: list[str], extra: list[str], addr: str | None = None
) -> ManagedProcess:
    """One HTTPS server on `host` for `names` (a run-CA leaf), ready when it listens; on
    `addr`, one of the host's addresses, when not its own on the trial network."""
    addr = addr or host.addr
    cert, key = ctx.ca.issue(f"site-{host.name}", names, [addr], out_dir=ctx.dir)
    argv = ctx.agent(SITE, "--addr", addr, "--cert", str(cert), "--key", str(key), *extra)
    proc = ctx.supervisor.start(host, f"https-{host.name}", argv)
    proc.wait_for_event("ready", SERVER_READY_S)
    return proc


def workload_of(mine: dict[str, object]) -> WorkloadMetrics:
    """The agent's result line as WorkloadMetrics (other keys are outcome/error)."""
    fields = {k: mine[k] for k in WorkloadMetrics.model_fields if mine.get(k) is not None}
    return WorkloadMetrics(**fields)  # type: ignore[arg-type]


class WebApp(App):
    name = "web"
    binaries = {"curl": "curl"}

    def warm_up(self, ctx: TrialContext) -> None:
        self.warm_client = WarmAgent(ctx, ctx.topology["client"], "browser", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        opts = ctx.scenario.web
        front, cdn = write_site(ctx.dir / "site", opts.resources, opts.resource_kb * 1024)
        topo = ctx.topology
        start_site(ctx, topo["chat"], [PAGE_HOST, STATIC_HOST], ["--root", str(front)])
        start_site(ctx, topo["voip"], [CDN_HOST], ["--root", str(cdn)])

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.web
        args = [
            "--page", f"https://{PAGE_HOST}/",
            "--resources", str(opts.resources),
            "--ca", str(ctx.ca.cert_path),
            "--timeout", str(opts.timeout_s),
            *(["--socks", ctx.endpoint.socks] if ctx.endpoint.socks else []),
        ]  # fmt: skip
        client = self.warm_client.go(*args)
        rounds = 1 + batches(opts.resources)  # the page, then its resources
        mine = result_of(client, rounds * opts.timeout_s + 15)
        result.logs["browser"] = str(client.stdout_path)
        if mine.get("items") is not None:
            result.workload = workload_of(mine)
        result.outcome = mine.get("outcome", "error")  # type: ignore[assignment]
        result.error = mine.get("error")  # type: ignore[assignment]
