"""WireGuard through wireguard-go (userspace: the kernel here has no WireGuard module, but it
has TUN), configured with `wg`. The client routes its outside traffic into the device; the
server masquerades it out of `proxy`.

wireguard-go's control sockets live in /var/run/wireguard/IFNAME.sock, shared by every
namespace, so interface names carry the run id and slot. Never run `wireguard-go -h`: it is
not help, it creates a TUN named "-h" and daemonizes.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
from pathlib import Path
from typing import ClassVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from pydantic import Field

from harness.fields import Port
from harness.tools.base import Tool, ToolFailed
from harness.tools.options import ToolOptions
from harness.tools.tun_mode import (
    masquerade_into,
    nat_on_proxy,
    probe_routed,
    route_outside_into,
)
from harness.topology.process import ManagedProcess
from harness.trial import Endpoint, TrialContext

PORT = 51820
SOCKET_DIR = Path("/var/run/wireguard")
SERVER_TUN, CLIENT_TUN, TUN_NET = "10.201.0.1", "10.201.0.2", "10.201.0.0/30"


def device_name(run_id: str, slot: int, side: str, prefix: str = "wg") -> str:
    """Unique across all namespaces and within IFNAMSIZ (15): prefix (2 letters: the tool's
    `wg`, the office-vpn app's own) + 8 hex + side letter."""
    digest = hashlib.sha256(f"{run_id}/{slot}".encode()).hexdigest()[:8]
    return f"{prefix}{digest}{side[0]}"


def keypair() -> tuple[str, str]:
    """(private, public) as WireGuard's base64 of the raw X25519 keys."""
    key = X25519PrivateKey.generate()
    raw = serialization.Encoding.Raw
    private = key.private_bytes(raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    public = key.public_key().public_bytes(raw, serialization.PublicFormat.Raw)
    return base64.b64encode(private).decode(), base64.b64encode(public).decode()


def secret_file(path: Path, value: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return path


def claim_socket(path: Path) -> None:
    """A control socket nobody answers on is a leftover of a killed wireguard-go: remove
    it. One that answers belongs to a live device of this very name: refuse."""
    if not path.exists():
        return
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        try:
            sock.connect(str(path))
        except OSError:
            path.unlink(missing_ok=True)
            return
    raise ToolFailed(f"wireguard: {path} is in use by a running wireguard-go")


def start_device(
    ctx: TrialContext,
    role: str,
    dev: str,
    address: str,
    mtu: int,
    program: str = "wireguard-go",
    label: str = "wireguard-go",
) -> ManagedProcess:
    """One wireguard-go device in host `role` (stopped by the trial's supervisor, which
    takes the TUN device with it), with `address`/30, `mtu` and link up."""
    proc = ctx.supervisor.start(ctx.topology[role], f"{label}-{role}", [program, "-f", dev])
    proc.wait_until(lambda: (SOCKET_DIR / f"{dev}.sock").exists(), 5, "UAPI socket")
    host = ctx.topology[role]
    for command in (
        ["ip", "addr", "add", f"{address}/30", "dev", dev],
        ["ip", "link", "set", dev, "mtu", str(mtu)],
        ["ip", "link", "set", dev, "up"],
    ):
        host.run(command)
    return proc


class WireGuardOptions(ToolOptions):
    port: Port = Field(default=PORT, description="the server's UDP listen port")
    mtu: int = Field(default=1420, ge=1280, le=1500, description="MTU of both tunnel devices")


class WireGuard(Tool):
    name = "wireguard"
    Options = WireGuardOptions
    options: WireGuardOptions
    programs: ClassVar[tuple[str, ...]] = ("wireguard-go",)
    protocols: ClassVar[list[str]] = ["WireGuard (wireguard-go, userspace)"]
    exposes = "tun"
    udp = "native"
    binaries: ClassVar[dict[str, str]] = {
        "wireguard-go": "wireguard-go",
        "wg": "wireguard-tools",
        "dig": "dnsutils",  # the readiness probe
    }

    def _device(self, ctx: TrialContext, role: str, dev: str, address: str) -> None:
        start_device(ctx, role, dev, address, self.options.mtu, self.program("wireguard-go"))

    def server_command(self, dev: str, key_file: Path, peer: str) -> list[str]:
        return ["wg", "set", dev, "listen-port", str(self.options.port),
                "private-key", str(key_file), "peer", peer,
                "allowed-ips", f"{CLIENT_TUN}/32"]  # fmt: skip

    def client_command(self, dev: str, key_file: Path, peer: str, server_ip: str) -> list[str]:
        return ["wg", "set", dev, "private-key", str(key_file), "peer", peer,
                "endpoint", f"{server_ip}:{self.options.port}",
                "allowed-ips", "0.0.0.0/0"]  # fmt: skip

    def start(self, ctx: TrialContext) -> Endpoint:
        self.check_installed()
        topo = ctx.topology
        server_dev = device_name(topo.run_id, topo.slot, "server")
        client_dev = device_name(topo.run_id, topo.slot, "client")
        for dev in (server_dev, client_dev):
            claim_socket(SOCKET_DIR / f"{dev}.sock")
        keys = ctx.dir / self.name
        s_priv, s_pub = keypair()
        c_priv, c_pub = keypair()
        self._device(ctx, "proxy", server_dev, SERVER_TUN)
        self._device(ctx, "client", client_dev, CLIENT_TUN)
        server_key = secret_file(keys / "server.key", s_priv)
        client_key = secret_file(keys / "client.key", c_priv)
        topo["proxy"].run(self.server_command(server_dev, server_key, c_pub))
        topo["client"].run(self.client_command(client_dev, client_key, s_pub, topo.addr("proxy")))
        nat_on_proxy(ctx, TUN_NET)
        route_outside_into(ctx, client_dev)
        masquerade_into(ctx, client_dev)
        probe_routed(ctx, self.name, client_dev, timeout=8)
        return Endpoint(socks=None, udp=True)
