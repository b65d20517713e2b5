"""The `office-vpn` bystander app: a remote-access VPN from the client to an office gateway
outside (WireGuard through wireguard-go, or OpenVPN over UDP or TCP: `office_vpn.protocol`),
then intranet requests to a server only the tunnel reaches. Legitimate business traffic: a
censor that blocks a VPN protocol to stop circumvention breaks this too, which is what the
app measures. Success is every intranet request answered through the tunnel; `workload`
also has the tunnel's handshake time (tunnel_ms), and duration_ms covers connect plus
requests: what the user waits for."""

from __future__ import annotations

from harness.apps.base import App, WarmAgent, result_of
from harness.apps.office_vpn.tunnel import (
    GATEWAY,
    INTRANET_ADDR,
    INTRANET_HOST,
    OfficeTunnel,
    TunnelDown,
    office_tunnel,
)
from harness.apps.web.app import start_site, workload_of
from harness.results import TrialResult, WorkloadMetrics
from harness.trial import TrialContext

AGENT = "harness.apps.office_vpn.agent"
PATH = "/handbook.pdf"


class OfficeVpnApp(App):
    name = "office-vpn"
    binaries = {
        "curl": "curl",
        "wireguard-go": "wireguard-go",
        "wg": "wireguard-tools",
        "openvpn": "openvpn",
    }

    def warm_up(self, ctx: TrialContext) -> None:
        self.warm_client = WarmAgent(ctx, ctx.topology["client"], "intranet", AGENT)

    def start_servers(self, ctx: TrialContext) -> None:
        """The intranet server on the gateway's loopback, then the VPN gateway."""
        opts = ctx.scenario.office_vpn
        gateway = ctx.topology[GATEWAY]
        gateway.run(["ip", "addr", "add", f"{INTRANET_ADDR}/32", "dev", "lo"])
        blob = f"{PATH}:{opts.size_kb * 1024}"
        start_site(ctx, gateway, [INTRANET_HOST], ["--blob", blob], addr=INTRANET_ADDR)
        self.tunnel: OfficeTunnel = office_tunnel(ctx, opts.protocol)
        self.tunnel.start_gateway()

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.office_vpn
        try:
            tunnel_ms = round(self.tunnel.connect(opts.tunnel_timeout_s), 1)
        except TunnelDown as down:
            result.outcome, result.error = down.outcome, str(down)  # type: ignore[assignment]
            result.workload = WorkloadMetrics(items=opts.requests, failures=[str(down)])
            return
        args = [
            "--url", f"https://{INTRANET_HOST}{PATH}",
            "--resolve", INTRANET_ADDR,
            "--ca", str(ctx.ca.cert_path),
            "--requests", str(opts.requests),
            "--size", str(opts.size_kb * 1024),
            "--timeout", str(opts.timeout_s),
        ]  # fmt: skip
        client = self.warm_client.go(*args)
        mine = result_of(client, opts.requests * opts.timeout_s + 15)
        result.logs["intranet"] = str(client.stdout_path)
        if mine.get("items") is not None:
            workload = workload_of(mine)
            workload.tunnel_ms = tunnel_ms
            workload.duration_ms = round(tunnel_ms + (workload.duration_ms or 0.0), 1)
            result.workload = workload
        result.outcome = mine.get("outcome", "error")  # type: ignore[assignment]
        result.error = mine.get("error")  # type: ignore[assignment]
