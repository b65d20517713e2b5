"""The shipped profiles gfw-2023, iran-2020 and russia-tspu-2021, loaded from their YAML
and run on real traffic: dig through the run's resolver, curl/openssl TLS, aioquic's QUIC
Initials, the harness's echo server. Each does what its file says, and the censor's
event log names the profile's rule."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import censor_sims.techniques  # noqa: F401  (registers the built-in techniques)
from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.profiles import load_profile
from censor_sims.technique import Technique, rate_bits
from harness.pki import make_ca
from harness.topology.dns import start_dns

pytestmark = pytest.mark.e2e

ECHO = [sys.executable, "-m", "harness.net.echo"]


def _profile_censor(topology, supervisor, tmp_path: Path, name: str) -> EventLog:
    techniques = [Technique.registry[t["type"]].model_validate(t)
                  for t in load_profile(name)["techniques"]]  # fmt: skip
    log = EventLog(tmp_path / "censor.jsonl")
    Censor(topology["censor"], techniques, topology.addresses.as_dict(), log, supervisor,
           tmp_path).start()  # fmt: skip
    return log


def _events(log: EventLog, technique: str, action: str) -> list[dict]:
    return [e for e in log.read() if e["technique"] == technique and e["action"] == action]


def _tls_server(topology, supervisor, tmp_path: Path, blob: int = 0) -> None:
    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue("front", ["front.test"], [topology.addr("front")])
    site = tmp_path / "site"
    site.mkdir()
    (site / "blob").write_bytes(os.urandom(blob))
    proc = supervisor.start(topology["front"], "s_server",
                            ["openssl", "s_server", "-accept", "443", "-cert", str(cert),
                             "-key", str(key), "-WWW", "-quiet"], cwd=site)  # fmt: skip
    proc.wait_until(lambda: topology["front"].listening(443), 5, "port 443")


def _curl(topology, name: str, timeout: float = 2) -> subprocess.CompletedProcess[str]:
    return topology["client"].run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code} %{speed_download}",
         "--max-time", str(timeout), "--resolve", f"{name}:443:{topology.addr('front')}",
         f"https://{name}/blob"], check=False,
    )  # fmt: skip


QUIC = """
import socket, sys, time
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
host, sni, sport = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = QuicConnection(configuration=QuicConfiguration(is_client=True, server_name=sni,
                                                      alpn_protocols=["h3"]))
conn.connect((host, 443), now=time.time())
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", sport))
s.settimeout(1)
for data, _ in conn.datagrams_to_send(now=time.time()):
    s.sendto(data, (host, 443))
try:
    s.recv(4096)
    print("echoed")
except TimeoutError:
    print("silence")
"""


def _quic(topology, sni: str, sport: int) -> str:
    out = topology["client"].run([sys.executable, "-c", QUIC, topology.addr("voip"), sni,
                                  str(sport)])  # fmt: skip
    return out.stdout.strip()


def test_gfw_2023_dns_injection_sni_rst_residual_and_quic(topology, supervisor, tmp_path) -> None:
    start_dns(topology, supervisor)
    _tls_server(topology, supervisor, tmp_path)
    echo = supervisor.start(
        topology["voip"],
        "echo443",
        [*ECHO, "serve", "--host", topology.addr("voip"), "--port", "443"],
    )
    echo.wait_for_event("ready", 5)
    log = _profile_censor(topology, supervisor, tmp_path, "gfw-2023")
    resolver = topology.addr("resolver")

    def dig(name: str) -> str:
        return topology["client"].run(["dig", "+short", "+tries=1", "+time=2", f"@{resolver}",
                                       name, "A"]).stdout.strip()  # fmt: skip

    assert dig("www.google.com") == "198.51.100.7"  # forged: the real server has no answer
    assert dig("chat.gatecrash.test") == topology.addr("chat")
    assert _curl(topology, "example.test").stdout.startswith("200")
    assert _curl(topology, "www.youtube.com").returncode in (35, 56)  # reset
    blocked_at = time.monotonic()
    time.sleep(1)
    inside = _curl(topology, "example.test", timeout=1)
    assert not inside.stdout.startswith("200"), "the 90 s penalty box holds the 3-tuple"
    print(
        f"gfw-2023: innocent TLS to the same 3-tuple still blocked "
        f"{time.monotonic() - blocked_at:.1f} s after the RST (window 90 s)"
    )
    # QUIC: blocked only when source port > destination port (443).
    assert _quic(topology, "example.test", 40001) == "echoed"
    assert _quic(topology, "www.google.com", 400) == "echoed"  # 400 < 443: the rule spares it
    assert _quic(topology, "www.google.com", 40002) == "silence"
    assert _quic(topology, "example.test", 40003) == "silence", "180 s residual on the 3-tuple"
    (forge,) = _events(log, "gfw-dns-injection", "forge")
    assert "2 forged A 198.51.100.7" in forge["rule"]
    (rst,) = _events(log, "gfw-sni-tls", "rst")
    assert rst["analyzer"]["tls"]["sni"] == "www.youtube.com"
    assert _events(log, "gfw-sni-tls", "residual-rst")
    (quic_drop,) = _events(log, "gfw-sni-quic", "drop")
    assert quic_drop["rule"].startswith("quic sni 'www.google.com'")
    assert _events(log, "gfw-sni-quic", "residual-drop")
    engine_start = _events(log, "engine", "start")[0]
    assert set(engine_start["analyzers"]) == {"dns", "tls", "quic", "fet"}


SEND = """
import socket, sys
host, port, first = sys.argv[1], int(sys.argv[2]), bytes.fromhex(sys.argv[3])
try:
    s = socket.create_connection((host, port), timeout=1)
    s.sendall(first)
    got = s.recv(len(first), socket.MSG_WAITALL)
    s.sendall(first)
    got += s.recv(len(first), socket.MSG_WAITALL)
    print("ok" if got == first * 2 else "short")
except OSError as exc:
    print(type(exc).__name__)
"""


def test_iran_2020_whitelist_ports_and_fingerprints(topology, supervisor, tmp_path) -> None:
    for port in (80, 22):
        proc = supervisor.start(topology["voip"], f"echo{port}",
                                [*ECHO, "serve", "--host", topology.addr("voip"),
                                 "--port", str(port)])  # fmt: skip
        proc.wait_for_event("ready", 5)
    log = _profile_censor(topology, supervisor, tmp_path, "iran-2020")

    def send(port: int, first: bytes) -> str:
        return topology["client"].run([sys.executable, "-c", SEND, topology.addr("voip"),
                                       str(port), first.hex()]).stdout.strip()  # fmt: skip

    http = b"GET / HTTP/1.1\r\nHost: x.test\r\n\r\n"
    assert send(80, http) == "ok"
    assert send(22, b"SSH-2.0-OpenSSH_9.2\r\n") == "ok"  # other ports: not filtered
    assert send(80, b"SSH-2.0-OpenSSH_9.2\r\n") == "TimeoutError"  # port fine, not HTTP
    assert send(80, http) == "TimeoutError", "60 s drop on the 3-tuple"
    actions = [e["action"] for e in log.read() if e["technique"] == "iran-whitelist"]
    assert actions.count("drop") == 1 and "residual-drop" in actions and "pass" in actions


def test_russia_tspu_2021_throttles_twitter_sni(topology, supervisor, tmp_path) -> None:
    _tls_server(topology, supervisor, tmp_path, blob=40_000)
    log = _profile_censor(topology, supervisor, tmp_path, "russia-tspu-2021")
    free = _curl(topology, "example.test", timeout=10).stdout.split()
    slow = _curl(topology, "abs.twimg.com", timeout=10).stdout.split()
    assert free[0] == slow[0] == "200"
    speed, free_speed = float(slow[1]) * 8, float(free[1]) * 8
    print(
        f"russia-tspu-2021: twimg.com {speed / 1e3:.1f} kbit/s, other {free_speed / 1e6:.1f} "
        "Mbit/s (profile rate 140kbit)"
    )
    assert 0.8 * rate_bits("140kbit") <= speed <= 1.05 * rate_bits("140kbit")
    assert free_speed > 20 * speed
    (event,) = _events(log, "tspu-twitter", "throttle")
    assert "'abs.twimg.com' matches 'twimg.com'" in event["rule"]
    assert json.dumps(event)  # one JSON line per action
