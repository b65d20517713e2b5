"""OpenVPN 2.6 in TLS mode without a CA: each side pins the other's certificate with
`peer-fingerprint` (the 2.6 way to set up a point-to-point tunnel without a PKI; `dh none`
for ECDHE only). The client's outside traffic is routed into the tun device
(`redirect-gateway def1`, which keeps a host route to the server via the old gateway) and
the server masquerades it out of `proxy`. UDP and TCP transports are two tools."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from pydantic import Field

from harness.fields import Port
from harness.pki import CA, make_ca
from harness.tools.base import Tool
from harness.tools.options import ToolOptions
from harness.tools.tun_mode import masquerade_into, nat_on_proxy, probe_routed
from harness.topology.base import fqdn
from harness.trial import Endpoint, TrialContext

PORT = 1194
DEVICE = "gc-ovpn"
SERVER_TUN, CLIENT_TUN, TUN_NET = "10.200.0.1", "10.200.0.2", "10.200.0.0/30"
SERVER_READY = r"link local \(bound\)|Listening for incoming TCP"  # in the server's log
CLIENT_READY = r"Initialization Sequence Completed"  # the client's: the tunnel is up


def fingerprint(cert_path: Path) -> str:
    """SHA256 of the certificate, colon-separated hex: OpenVPN's peer-fingerprint form."""
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def write_config(lines: list[str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def tunnel_configs(  # one tunnel's every setting: both ends must agree on them
    proto: str,
    port: int,
    server_ip: str,
    server: tuple[Path, Path],
    client: tuple[Path, Path],
    device: str = DEVICE,
    tunnel: tuple[str, str] = (SERVER_TUN, CLIENT_TUN),
    client_extra: tuple[str, ...] = ("redirect-gateway def1",),
) -> tuple[list[str], list[str]]:
    """(server, client) config lines of a point-to-point tunnel; `server`/`client` are
    (certificate, key), `tunnel` the (server, client) tunnel addresses, `client_extra` the
    client's routing (the tool's: every destination; an office VPN's: its subnets)."""
    s_cert, s_key = server
    c_cert, c_key = client
    s_tun, c_tun = tunnel
    common = ["dev-type tun", f"dev {device}", "ping 1", "ping-restart 10", "verb 3",
              "persist-key"]  # fmt: skip
    server_lines = [
        *common, f"proto {proto}-server" if proto == "tcp" else "proto udp",
        f"local {server_ip}", f"lport {port}", f"ifconfig {s_tun} {c_tun}",
        "tls-server", "dh none", f"cert {s_cert}", f"key {s_key}",
        f"peer-fingerprint {fingerprint(c_cert)}",
    ]  # fmt: skip
    client_lines = [
        *common, f"proto {proto}-client" if proto == "tcp" else "proto udp",
        f"remote {server_ip} {port}", "nobind", f"ifconfig {c_tun} {s_tun}",
        "tls-client", *client_extra, f"cert {c_cert}", f"key {c_key}",
        f"peer-fingerprint {fingerprint(s_cert)}", "connect-retry 1",
    ]  # fmt: skip
    return server_lines, client_lines


def _ca(ctx: TrialContext) -> CA:
    return ctx.ca if ctx.ca is not None else make_ca(ctx.dir / "pki")


def _options(default_proto: Literal["udp", "tcp"]) -> type[ToolOptions]:
    """Both OpenVPN tools take the same options; each has its own transport by default."""

    class OpenVpnOptions(ToolOptions):
        proto: Literal["udp", "tcp"] = Field(default=default_proto, description="transport")
        port: Port = Field(default=PORT, description="the server's port")

    return OpenVpnOptions


class _OpenVpn(Tool):
    exposes = "tun"
    udp = "native"  # a layer-3 tunnel carries every IP packet
    binaries: ClassVar[dict[str, str]] = {"openvpn": "openvpn", "dig": "dnsutils"}
    programs: ClassVar[tuple[str, ...]] = ("openvpn",)
    protocols: ClassVar[list[str]]

    def config_lines(
        self, server_ip: str, server: tuple[Path, Path], client: tuple[Path, Path]
    ) -> tuple[list[str], list[str]]:
        """(server, client) config lines; `server`/`client` are (certificate, key)."""
        proto, port = self.options.proto, self.options.port  # type: ignore[attr-defined]
        return tunnel_configs(proto, port, server_ip, server, client)

    def start(self, ctx: TrialContext) -> Endpoint:
        self.check_installed()
        server_ip = ctx.topology.addr("proxy")
        cfg_dir = ctx.dir / self.name
        ca = _ca(ctx)
        server = ca.issue("server", [fqdn("proxy")], [server_ip], cfg_dir)
        client = ca.issue("client", [fqdn("client")], [ctx.topology.addr("client")], cfg_dir)
        server_lines, client_lines = self.config_lines(server_ip, server, client)
        server_cfg = write_config(server_lines, cfg_dir / "server.conf")
        client_cfg = write_config(client_lines, cfg_dir / "client.conf")
        nat_on_proxy(ctx, TUN_NET)
        masquerade_into(ctx, DEVICE)
        openvpn = self.program("openvpn")
        server_proc = ctx.supervisor.start(
            ctx.topology["proxy"], f"{self.name}-server", [openvpn, "--config", str(server_cfg)]
        )
        server_proc.wait_for_line(SERVER_READY, 10)
        client_proc = ctx.supervisor.start(
            ctx.topology["client"], f"{self.name}-client", [openvpn, "--config", str(client_cfg)]
        )
        client_proc.wait_for_line(CLIENT_READY, 20)
        probe_routed(ctx, self.name, DEVICE, timeout=8)
        return Endpoint(socks=None, udp=True)


class OpenVpnUdp(_OpenVpn):
    name = "openvpn-udp"
    protocols = ["OpenVPN over UDP", "TLS (peer-fingerprint)"]
    Options = _options("udp")


class OpenVpnTcp(_OpenVpn):
    name = "openvpn-tcp"
    protocols = ["OpenVPN over TCP", "TLS (peer-fingerprint)"]
    Options = _options("tcp")
