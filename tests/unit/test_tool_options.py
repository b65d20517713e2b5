"""Tool options reach what runs: each tool's start() is run against a recording fake of the
trial (hosts, supervisor) and the argv, environment and config files it would start are
inspected, defaults against a setting. The programs themselves are not run here (the e2e
tests do that); sing-box still checks its own configs."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.pki import make_ca
from harness.tools import base as tool_base
from harness.tools import openvpn, wireguard
from harness.tools.variant import ToolEntry, make_tool
from harness.trial import TrialContext

ADDRS = {"client": "10.77.0.2", "proxy": "10.77.0.130", "front": "10.77.0.131",
         "dns": "10.77.0.132", "resolver": "10.77.0.3", "censor": "10.77.0.1",
         "voip": "10.77.0.133", "chat": "10.77.0.134"}  # fmt: skip
# What a process "prints", by its name: enough for each tool's readiness checks.
OUTPUT = {
    "obfs4-obfs4proxy@proxy": "SMETHOD obfs4 10.77.0.130:9443 ARGS:cert=AAAA,iat-mode=1\n"
    "SMETHODS DONE\n",
    "obfs4-obfs4proxy@client": "CMETHOD obfs4 socks5 127.0.0.1:40000\nCMETHODS DONE\n",
}


@dataclass
class Started:
    host: str
    name: str
    argv: list[str]
    env: dict[str, str]


class FakeProcess:
    def __init__(self, name: str, host: str, tmp: Path) -> None:
        self.name, self.host = name, host
        self.stderr_path = tmp / f"{host}.{name}.err"
        self.stderr_path.write_text("")
        self.text = OUTPUT.get(f"{name}@{host}", '{"event": "ready"}\n')

    def stdout_text(self) -> str:
        return self.text

    def wait_until(self, check, timeout: float, what: str) -> Any:
        return check()

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> None:
        return None

    def wait_for_event(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        return {"event": event, "socks": "127.0.0.1:1082", "setup_ms": 1}


@dataclass
class FakeSupervisor:
    tmp: Path
    started: list[Started] = field(default_factory=list)

    def start(self, host, name, argv, env=None, keep_stdin=False, cwd=None) -> FakeProcess:
        self.started.append(Started(host.name, name, list(argv), dict(env or {})))
        return FakeProcess(name, host.name, self.tmp)

    def argv(self, name: str) -> list[str]:
        return next(s.argv for s in self.started if s.name == name)

    def env(self, name: str, host: str) -> dict[str, str]:
        return next(s.env for s in self.started if s.name == name and s.host == host)


@dataclass
class FakeHost:
    name: str
    ran: list[list[str]] = field(default_factory=list)

    def run(self, argv, check=True, input=None, timeout=30.0):
        self.ran.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    def listening(self, port: int, proto: str = "tcp") -> bool:
        return True


class FakeAddresses:
    def gateway(self, role: str) -> str:
        return "10.77.0.1"


class FakeTopology:
    run_id, slot = "abc123", 0
    addresses = FakeAddresses()

    def __init__(self) -> None:
        self.hosts = {role: FakeHost(role) for role in ADDRS}

    def __getitem__(self, role: str) -> FakeHost:
        return self.hosts[role]

    def addr(self, role: str) -> str:
        return ADDRS[role]


@pytest.fixture
def trial(tmp_path, monkeypatch):
    """start(ENTRY) -> (supervisor, topology, trial dir) after the tool's start() ran."""
    monkeypatch.setattr(tool_base.Tool, "probe", lambda self, ctx, socks, timeout: 1.0)
    monkeypatch.setattr(tool_base.Tool, "check_installed", lambda self: None)
    for module in (openvpn, wireguard):
        monkeypatch.setattr(module, "probe_routed", lambda *a, **k: 1.0)
    ca = make_ca(tmp_path / "pki")

    def start(name: str, **options: Any) -> tuple[FakeSupervisor, FakeTopology, Path]:
        tdir = tmp_path / f"t{len(list(tmp_path.iterdir()))}"
        tdir.mkdir()
        supervisor, topology = FakeSupervisor(tdir), FakeTopology()
        ctx = TrialContext(None, "c", name, "a", 0, topology, supervisor, tdir, ca)  # type: ignore[arg-type]
        make_tool(ToolEntry(name=name, label=name, options=options)).start(ctx)
        return supervisor, topology, tdir

    return start


def _after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_shadowsocks_cipher_and_port(trial) -> None:
    sup, _, _ = trial("shadowsocks")
    assert _after(sup.argv("ss-server"), "-m") == "chacha20-ietf-poly1305"
    sup, _, _ = trial("shadowsocks", cipher="aes-256-gcm", port=443)
    for name in ("ss-server", "ss-local"):
        assert _after(sup.argv(name), "-m") == "aes-256-gcm"
        assert _after(sup.argv(name), "-p") == "443"


def test_obfs4_iat_mode_reaches_the_bridge(trial) -> None:
    sup, _, _ = trial("obfs4")
    assert sup.env("obfs4-obfs4proxy", "proxy")["TOR_PT_SERVER_TRANSPORT_OPTIONS"] == (
        "obfs4:iat-mode=0"
    )
    sup, _, _ = trial("obfs4", **{"iat-mode": 2})
    assert sup.env("obfs4-obfs4proxy", "proxy")["TOR_PT_SERVER_TRANSPORT_OPTIONS"] == (
        "obfs4:iat-mode=2"
    )


def test_psiphon_like_padding_and_port(trial) -> None:
    sup, _, _ = trial("psiphon-like", **{"padding-min": 0, "padding-max": 100, "port": 2222})
    client = sup.argv("ossh-client")
    assert _after(client, "--padding-min") == "0" and _after(client, "--padding-max") == "100"
    assert _after(client, "--server").endswith(":2222")
    assert _after(sup.argv("ossh-server"), "--listen").endswith(":2222")


def test_psiphon_like_tls_sni_names_hello_and_certificate(trial) -> None:
    sup, _, _ = trial("psiphon-like-tls", sni="cdn.example.test")
    assert _after(sup.argv("tls-ossh-client"), "--sni") == "cdn.example.test"
    cert = _after(sup.argv("tls-ossh-server"), "--cert")
    text = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
                          capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "DNS:cdn.example.test" in text


def test_psiphon_like_meek_front_domain_and_host(trial) -> None:
    sup, _, _ = trial("psiphon-like-meek", **{"front-domain": "cdn.example.test",
                                              "host": "hidden.example.test"})  # fmt: skip
    client = sup.argv("meek-client")
    assert _after(client, "--sni") == "cdn.example.test"
    assert _after(client, "--host") == "hidden.example.test"
    assert _after(sup.argv("meek-front"), "--route").startswith("hidden.example.test=")


def test_padding_range_is_what_the_client_sends() -> None:
    from harness.tools.psiphon_like.client import padding_bytes

    assert {len(padding_bytes((0, 0))) for _ in range(5)} == {0}
    assert all(100 <= len(padding_bytes((100, 120))) <= 120 for _ in range(50))


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_v2ray_transport_and_sni(trial) -> None:
    _, _, tdir = trial("v2ray")
    client = _json(tdir / "tool-v2ray" / "client.json")["outbounds"][0]["streamSettings"]
    assert (
        client["network"] == "ws" and client["tlsSettings"]["serverName"] == "proxy.gatecrash.test"
    )
    _, _, tdir = trial("v2ray", transport="http", sni="cdn.example.test")
    server = _json(tdir / "tool-v2ray" / "server.json")["inbounds"][0]["streamSettings"]
    client = _json(tdir / "tool-v2ray" / "client.json")["outbounds"][0]["streamSettings"]
    assert server["network"] == client["network"] == "http"
    assert client["tlsSettings"]["serverName"] == "cdn.example.test"
    cert = server["tlsSettings"]["certificates"][0]["certificateFile"]
    san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", cert],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert "DNS:cdn.example.test" in san


def test_trojan_sni(trial) -> None:
    _, _, tdir = trial("trojan", sni="cdn.example.test")
    assert _json(tdir / "tool-trojan" / "client.json")["ssl"]["sni"] == "cdn.example.test"


def test_shadowsocks_v2ray_plugin_cipher(trial) -> None:
    sup, _, _ = trial("shadowsocks-v2ray-plugin", cipher="aes-128-gcm")
    assert _after(sup.argv("shadowsocks-v2ray-plugin-ss-local"), "-m") == "aes-128-gcm"
    assert _after(sup.argv("shadowsocks-v2ray-plugin-ss-server"), "-m") == "aes-128-gcm"


def test_sing_box_vless_transport_and_sni(trial) -> None:
    _, _, tdir = trial("sing-box-vless", transport="grpc", sni="cdn.example.test")
    client = _json(tdir / "sing-box-vless" / "client.json")["outbounds"][0]
    server = _json(tdir / "sing-box-vless" / "server.json")["inbounds"][0]
    assert client["transport"] == server["transport"] == {"type": "grpc",
                                                          "service_name": "gatecrash"}  # fmt: skip
    assert client["tls"]["server_name"] == "cdn.example.test" and client["tls"]["alpn"] == ["h2"]
    _, _, tdir = trial("sing-box-vless")
    assert "transport" not in _json(tdir / "sing-box-vless" / "client.json")["outbounds"][0]


def test_sing_box_hysteria2_obfs(trial) -> None:
    _, _, tdir = trial("sing-box-hysteria2", obfs="salamander")
    client = _json(tdir / "sing-box-hysteria2" / "client.json")["outbounds"][0]
    server = _json(tdir / "sing-box-hysteria2" / "server.json")["inbounds"][0]
    assert client["obfs"]["type"] == "salamander" and client["obfs"] == server["obfs"]


def test_openvpn_proto_and_port(trial) -> None:
    _, _, tdir = trial("openvpn-udp", proto="tcp", port=443)
    server = (tdir / "openvpn-udp" / "server.conf").read_text().splitlines()
    client = (tdir / "openvpn-udp" / "client.conf").read_text().splitlines()
    assert "proto tcp-server" in server and "lport 443" in server
    assert "proto tcp-client" in client and f"remote {ADDRS['proxy']} 443" in client
    _, _, tdir = trial("openvpn-tcp")
    assert "proto tcp-server" in (tdir / "openvpn-tcp" / "server.conf").read_text()


def test_wireguard_port_and_mtu(trial) -> None:
    _, topology, _ = trial("wireguard", port=4500, mtu=1280)
    proxy, client = topology["proxy"].ran, topology["client"].ran
    assert any(c[:2] == ["wg", "set"] and _after(c, "listen-port") == "4500" for c in proxy)
    assert any(c[:2] == ["wg", "set"] and _after(c, "endpoint").endswith(":4500") for c in client)
    assert any(c[:3] == ["ip", "link", "set"] and c[-2:] == ["mtu", "1280"] for c in client)
    assert any(c[:3] == ["ip", "link", "set"] and c[-2:] == ["mtu", "1280"] for c in proxy)
