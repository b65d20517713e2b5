"""The office VPN itself: the gateway on an outside host (`voip`), the client inside, with
the same wireguard-go / OpenVPN set-up code as the wireguard and openvpn tools, under names,
addresses and routes of its own, so that one trial may run the app through those tools
(a VPN inside the tool's tunnel) without a clash: devices `ov…` (wireguard-go's control
sockets are shared by every namespace) and `gc-office`, tunnel 10.202.0.0/30 (the tools use
10.200/10.201), and a split tunnel: only the intranet, 10.203.0.0/24, is routed into it.

The intranet server listens on INTRANET_ADDR, added to the gateway's loopback: no router
has a route to it, so only the tunnel reaches it. `connect` returns the time from handing
the client its peer (WireGuard: `wg set`, which sends the first handshake at once because
of persistent-keepalive; OpenVPN: the client's start) to the handshake done (WireGuard:
`wg show` reports a handshake, polled every 10 ms; OpenVPN: "Initialization Sequence
Completed").
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

from harness.apps.office_vpn.options import Protocol
from harness.tools import openvpn, wireguard
from harness.topology.base import fqdn
from harness.topology.process import ManagedProcess, ProcessFailed
from harness.trial import TrialContext

GATEWAY = "voip"  # the outside host of the office gateway and its intranet server
SERVER_TUN, CLIENT_TUN = "10.202.0.1", "10.202.0.2"
INTRANET_NET, INTRANET_MASK = "10.203.0.0/24", "255.255.255.0"
INTRANET_ADDR = "10.203.0.80"
INTRANET_HOST = fqdn("intranet")  # in no public zone: the client pins it (curl --resolve)
WG_PREFIX = "ov"  # device names ov + 8 hex + side letter (the tool's are wg…)
WG_MTU = 1280  # fits inside another tunnel (a routed tool) with WireGuard's 80-byte overhead
OVPN_DEVICE = "gc-office"
POLL_S = 0.01


class TunnelDown(Exception):
    """The VPN did not come up: what the network did, as an outcome class and a line."""

    def __init__(self, outcome: str, why: str) -> None:
        super().__init__(why)
        self.outcome = outcome


class OfficeTunnel(ABC):
    """One office VPN: its gateway (started with the app's servers, before the censor) and
    its client (started in the trial, through the censor)."""

    def __init__(self, ctx: TrialContext) -> None:
        self.ctx = ctx
        self.dir = ctx.dir / "office-vpn"

    @abstractmethod
    def start_gateway(self) -> None: ...

    @abstractmethod
    def connect(self, timeout: float) -> float:
        """Bring the client up; the time to the handshake in ms, or TunnelDown."""


class WireGuardTunnel(OfficeTunnel):
    port = wireguard.PORT

    def __init__(self, ctx: TrialContext) -> None:
        super().__init__(ctx)
        topo = ctx.topology
        self.devices = {
            side: wireguard.device_name(topo.run_id, topo.slot, side, WG_PREFIX)
            for side in ("server", "client")
        }
        self.server_key, self.server_pub = wireguard.keypair()
        self.client_key, self.client_pub = wireguard.keypair()

    def _device(self, side: str, role: str, address: str) -> str:
        dev = self.devices[side]
        wireguard.claim_socket(wireguard.SOCKET_DIR / f"{dev}.sock")
        wireguard.start_device(self.ctx, role, dev, address, WG_MTU, label="office-wireguard")
        return dev

    def start_gateway(self) -> None:
        dev = self._device("server", GATEWAY, SERVER_TUN)
        key = wireguard.secret_file(self.dir / "server.key", self.server_key)
        self.ctx.topology[GATEWAY].run(["wg", "set", dev, "listen-port", str(self.port),
            "private-key", str(key), "peer", self.client_pub,
            "allowed-ips", f"{CLIENT_TUN}/32"])  # fmt: skip

    def connect(self, timeout: float) -> float:
        client = self.ctx.topology["client"]
        dev = self._device("client", "client", CLIENT_TUN)
        client.run(["ip", "route", "add", INTRANET_NET, "dev", dev])
        key = wireguard.secret_file(self.dir / "client.key", self.client_key)
        endpoint = f"{self.ctx.topology.addr(GATEWAY)}:{self.port}"
        started = time.monotonic()
        client.run(["wg", "set", dev, "private-key", str(key), "peer", self.server_pub,
                    "endpoint", endpoint, "allowed-ips", f"{SERVER_TUN}/32,{INTRANET_NET}",
                    "persistent-keepalive", "25"])  # fmt: skip
        show = ["wg", "show", dev, "latest-handshakes"]
        while time.monotonic() - started < timeout:
            handshakes = client.run(show).stdout.split()
            if len(handshakes) == 2 and handshakes[1] != "0":
                return (time.monotonic() - started) * 1000
            time.sleep(POLL_S)
        raise TunnelDown("timeout", f"no WireGuard handshake with {endpoint} in {timeout:g} s")


class OpenVpnTunnel(OfficeTunnel):
    port = openvpn.PORT

    def __init__(self, ctx: TrialContext, proto: str) -> None:
        super().__init__(ctx)
        self.proto = proto
        topo = ctx.topology
        server = ctx.ca.issue("office-gateway", [fqdn(GATEWAY)], [topo.addr(GATEWAY)], self.dir)
        client = ctx.ca.issue("office-client", [fqdn("client")], [topo.addr("client")], self.dir)
        route = f"route {INTRANET_NET.split('/')[0]} {INTRANET_MASK}"  # the split tunnel
        self.server_cfg, self.client_cfg = (
            openvpn.write_config(lines, self.dir / name)
            for lines, name in zip(
                openvpn.tunnel_configs(proto, self.port, topo.addr(GATEWAY), server, client,
                                       OVPN_DEVICE, (SERVER_TUN, CLIENT_TUN), (route,)),
                ("server.conf", "client.conf"),
                strict=True,
            )
        )  # fmt: skip

    def _start(self, role: str, config: Path) -> ManagedProcess:
        return self.ctx.supervisor.start(
            self.ctx.topology[role], f"office-openvpn-{role}", ["openvpn", "--config", str(config)]
        )

    def start_gateway(self) -> None:
        self._start(GATEWAY, self.server_cfg).wait_for_line(openvpn.SERVER_READY, 10)

    def connect(self, timeout: float) -> float:
        started = time.monotonic()
        proc = self._start("client", self.client_cfg)
        try:
            proc.wait_for_line(openvpn.CLIENT_READY, timeout)
        except ProcessFailed:
            if not proc.running():
                raise  # OpenVPN retries what the network does to it: an exit is ours
            raise TunnelDown(*openvpn_failure(proc.stdout_text(), self.proto, timeout)) from None
        return (time.monotonic() - started) * 1000


def openvpn_failure(log: str, proto: str, timeout: float) -> tuple[str, str]:
    """(outcome, why) of an OpenVPN client that did not come up, from its log: a TCP
    connection reset or refused says so; anything else is a timeout."""
    for needle, outcome in (("Connection reset", "reset"), ("Connection refused", "refused")):
        lines = [line[line.index(needle) :] for line in log.splitlines() if needle in line]
        if lines:  # from the needle on: the line's timestamp is no part of what happened
            return outcome, f"OpenVPN over {proto}: {lines[-1].strip()}"
    return "timeout", f"OpenVPN over {proto}: no tunnel in {timeout:g} s"


def office_tunnel(ctx: TrialContext, protocol: Protocol) -> OfficeTunnel:
    if protocol == "wireguard":
        return WireGuardTunnel(ctx)
    return OpenVpnTunnel(ctx, protocol.removeprefix("openvpn-"))
