"""Routed (tun) tools, and tun mode for unmodified apps.

A tun tool (OpenVPN, WireGuard) carries IP packets: the client host's routes send every
outside destination into the tunnel device and the server NATs what comes out. Apps then
connect directly (Endpoint.socks is None) and the routing carries them.

Tun mode (`<tool>+tun` in a scenario) does the same for ANY socks5 tool: sing-box's tun
inbound (gvisor stack, auto_route) on the client host turns every TCP connection and UDP
flow into SOCKS5 CONNECT / UDP ASSOCIATE to the tool's local port, so a program that knows
nothing of proxies (dig, curl --noproxy) is carried. The tool's own connections to its
server must not loop back into the tun: the server's addresses (`proxy`, `front`) are
excluded from auto_route (route_exclude_address), which works inside a namespace without
running the tool as another user.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from harness.net.socks5 import ProxyAddress
from harness.tools.base import Tool, ToolFailed
from harness.trial import Endpoint, TrialContext

SUFFIX = "+tun"
TUN_DEVICE = "gc-tun"
TUN_ADDRESS = "172.19.0.1/30"
# Hosts that serve tools (a proxy server, a CDN front): their traffic stays off the tun.
TOOL_SERVER_ROLES = ("proxy", "front")


def nat_on_proxy(ctx: TrialContext, tunnel_net: str) -> None:
    """Forward and masquerade the tunnel's packets on `proxy` (only inside its namespace,
    which takes the rule with it when it is deleted)."""
    proxy = ctx.topology["proxy"]
    proxy.run(["sysctl", "-qw", "net.ipv4.ip_forward=1"])
    proxy.run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-s", tunnel_net, "-o", "eth0",
               "-j", "MASQUERADE"])  # fmt: skip


def route_outside_into(ctx: TrialContext, device: str) -> None:
    """Send every destination beyond the client's own subnet into `device`, except the
    tool server (its tunnel packets must still leave by eth0). 0/1 + 128/1 outrank the
    default route without replacing it, as OpenVPN's redirect-gateway def1 does."""
    client = ctx.topology["client"]
    gateway = ctx.topology.addresses.gateway("client")
    client.run(["ip", "route", "add", f"{ctx.topology.addr('proxy')}/32", "via", gateway])
    for half in ("0.0.0.0/1", "128.0.0.0/1"):
        client.run(["ip", "route", "add", half, "dev", device])


def masquerade_into(ctx: TrialContext, device: str) -> None:
    """Give packets entering the tunnel the tunnel address as source, in the client host.
    An unbound socket gets it from the route anyway; a program bound to the LAN address (a
    SIP UA advertising it) would otherwise send packets that WireGuard's allowed-ips drop
    and the server's NAT (which matches the tunnel subnet) passes untranslated."""
    ctx.topology["client"].run(["iptables", "-t", "nat", "-A", "POSTROUTING", "-o", device,
                                "-j", "MASQUERADE"])  # fmt: skip


def probe_routed(ctx: TrialContext, tool: str, device: str, timeout: float) -> float:
    """End-to-end readiness of a routed tunnel: the route to the `dns` host goes into
    `device`, and a DNS query over TCP to it (plain dig, no proxy) is answered. Returns ms."""
    client, dns = ctx.topology["client"], ctx.topology.addr("dns")
    route = client.run(["ip", "-o", "route", "get", dns]).stdout
    if f"dev {device}" not in route:
        raise ToolFailed(f"{tool}: {dns} is not routed into {device}: {route.strip()}")
    start = time.monotonic()
    query = ["dig", "+tcp", "+tries=1", "+time=1", "+short", f"@{dns}", "dns.gatecrash.test"]
    while time.monotonic() - start < timeout:
        if client.run(query, check=False, timeout=5).stdout.strip() == dns:
            return (time.monotonic() - start) * 1000
        time.sleep(0.02)
    raise ToolFailed(f"{tool}: no DNS answer through {device} within {timeout:.0f} s")


def split_name(name: str) -> tuple[str, bool]:
    """'shadowsocks+tun' -> ('shadowsocks', True); other names pass unchanged."""
    if name.endswith(SUFFIX):
        return name[: -len(SUFFIX)], True
    return name, False


def load_tool(name: str) -> Tool:
    """A registered tool by name; `<name>+tun` wraps a socks5 tool in tun mode."""
    from harness import registry

    base, tun = split_name(name)
    tool = registry.load(registry.TOOLS, base)()
    return TunMode(tool) if tun else tool


def check_tun_name(name: str, tools: dict[str, str]) -> None:
    """Scenario validation: `X+tun` needs a registered X that exposes socks5."""
    from harness import registry

    base, tun = split_name(name)
    if not tun:
        return
    if base not in tools:
        raise ValueError(
            f"unknown tool {base!r} in {name!r}; valid tools: {', '.join(sorted(tools))}"
        )
    exposes = registry.load(tools, base).exposes
    if exposes != "socks5":
        raise ValueError(
            f"{name!r}: tun mode needs a tool exposing socks5, {base} exposes {exposes}"
        )


class TunMode(Tool):
    """Wraps a socks5 tool: its client runs as usual, then sing-box's tun inbound routes
    the whole client host through the tool's SOCKS5 port."""

    exposes = "tun"
    binaries: ClassVar[dict[str, str]] = {"dig": "dnsutils"}  # the readiness probe

    def __init__(self, inner: Tool) -> None:
        if inner.exposes != "socks5":
            raise ValueError(f"tun mode needs a socks5 tool; {inner.name} exposes {inner.exposes}")
        self.inner = inner
        self.name = f"{inner.name}{SUFFIX}"  # type: ignore[misc]
        self.udp = inner.udp  # type: ignore[misc]  # UDP flows become the tool's UDP ASSOCIATE

    def version(self) -> str | None:
        """The wrapped tool's: the tun helper is not what is measured."""
        return self.inner.version()

    def check_installed(self) -> None:
        from harness.tools.sing_box import sing_box_binary

        super().check_installed()
        self.inner.check_installed()
        sing_box_binary()

    def config(self, ctx: TrialContext, socks: str) -> dict[str, Any]:
        proxy = ProxyAddress.parse(socks)  # `user:pass@host:port` when the tool wants auth
        auth = {"username": proxy.username, "password": proxy.password or ""}
        excluded = [f"{ctx.topology.addr(r)}/32" for r in TOOL_SERVER_ROLES]
        return {
            "log": {"level": "info", "timestamp": True},
            "inbounds": [
                {
                    "type": "tun",
                    "tag": "tun",
                    "interface_name": TUN_DEVICE,
                    "address": [TUN_ADDRESS],
                    "mtu": 1500,
                    "stack": "gvisor",
                    "auto_route": True,
                    "route_exclude_address": excluded,
                }
            ],
            "outbounds": [
                {
                    "type": "socks",
                    "tag": "tool",
                    "server": proxy.host,
                    "server_port": proxy.port,
                    "version": "5",
                    **(auth if proxy.username is not None else {}),
                },
            ],
            "route": {"final": "tool"},
        }

    def start(self, ctx: TrialContext) -> Endpoint:
        from harness.tools.sing_box import run_args, write_config

        self.check_installed()
        inner = self.inner.start(ctx)
        if not inner.socks:
            raise ToolFailed(f"{self.inner.name} exposed no SOCKS5 port for tun mode")
        config = write_config(ctx.dir / "tun-mode" / "tun.json", self.config(ctx, inner.socks))
        tun = ctx.supervisor.start(ctx.topology["client"], "tun-mode", run_args(config))
        tun.wait_for_line(r"sing-box started", 10)
        probe_routed(ctx, self.name, TUN_DEVICE, timeout=8)
        return Endpoint(socks=None, udp=inner.udp)
