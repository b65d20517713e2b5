"""The userspace DPI engine with real programs: curl/openssl for TLS, dig through the run's
resolver for DNS, our SIP UAs for VoIP. Censored flows fail the way the technique says,
others pass, residual windows are measured, and the event log records each decision."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from censor_sims.events import EventLog
from censor_sims.techniques.dns_poison import DnsPoison
from censor_sims.techniques.fet_block import FetBlock
from censor_sims.techniques.protocol_whitelist import ProtocolWhitelist
from censor_sims.techniques.sni_filter import SniFilter
from harness.pki import make_ca
from harness.topology.dns import start_dns
from tests.conftest import start_censor

pytestmark = pytest.mark.e2e

_censor = start_censor


def _tls_server(topology, supervisor, tmp_path: Path) -> None:
    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue("front", ["blocked.test", "allowed.test"], [topology.addr("front")])
    proc = supervisor.start(topology["front"], "s_server",
                            ["openssl", "s_server", "-accept", "443", "-cert", str(cert),
                             "-key", str(key), "-www", "-quiet"])  # fmt: skip
    proc.wait_until(lambda: topology["front"].listening(443), 5, "port 443")


def _curl(topology, name: str, timeout: float = 3) -> subprocess.CompletedProcess[str]:
    return topology["client"].run(
        ["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(timeout),
         "--resolve", f"{name}:443:{topology.addr('front')}", f"https://{name}/"],
        check=False,
    )  # fmt: skip


def _events(log: EventLog, technique: str) -> list[dict]:
    return [e for e in log.read() if e["technique"] == technique]


def test_sni_filter_resets_matching_tls_only(topology, supervisor, tmp_path) -> None:
    _tls_server(topology, supervisor, tmp_path)
    _censor(topology, supervisor, tmp_path, SniFilter(names=["blocked.test"], action="rst"))
    allowed = _curl(topology, "allowed.test")
    blocked = _curl(topology, "blocked.test")
    assert allowed.stdout == "200", allowed
    # 35: TLS handshake failed, 56: receive failure (connection reset by peer)
    assert blocked.returncode in (35, 56), blocked
    (event,) = [e for e in _events(EventLog(tmp_path / "censor.jsonl"), "sni_filter")
                if e["action"] == "rst"]  # fmt: skip
    assert "blocked.test" in event["rule"] and event["analyzer"]["tls"]["sni"] == "blocked.test"
    assert event["flow"].startswith(f"tcp {topology.addr('client')}:")


def test_sni_filter_drop_times_out(topology, supervisor, tmp_path) -> None:
    _tls_server(topology, supervisor, tmp_path)
    _censor(topology, supervisor, tmp_path, SniFilter(names=["blocked.test"], action="drop"))
    blocked = _curl(topology, "blocked.test", timeout=2)
    assert blocked.returncode == 28, blocked  # curl: operation timed out


def test_residual_penalty_blocks_the_3_tuple_then_expires(topology, supervisor, tmp_path) -> None:
    _tls_server(topology, supervisor, tmp_path)
    _, log = _censor(topology, supervisor, tmp_path,
                     SniFilter(names=["blocked.test"], action="rst", residual=3))  # fmt: skip
    assert _curl(topology, "blocked.test").returncode in (35, 56)
    started = time.monotonic()
    inside = _curl(topology, "allowed.test", timeout=1)  # same 3-tuple, innocent name
    assert inside.stdout != "200", "a second connection inside the window must fail"
    time.sleep(max(0.0, 3.3 - (time.monotonic() - started)))
    after = _curl(topology, "allowed.test")
    assert after.stdout == "200", "after the window the 3-tuple is free again"
    actions = [e["action"] for e in _events(log, "sni_filter")]
    assert "rst" in actions and "residual-rst" in actions


def test_dns_poison_injects_forged_answer_that_wins(topology, supervisor, tmp_path) -> None:
    start_dns(topology, supervisor)
    poison = DnsPoison(names=["voip.gatecrash.test"], answer="192.0.2.7", count=2)
    _, log = _censor(topology, supervisor, tmp_path, poison)
    resolver = topology.addr("resolver")

    def dig(name: str) -> str:
        return topology["client"].run(["dig", "+short", "+tries=1", "+time=2", f"@{resolver}",
                                       name, "A"]).stdout.strip()  # fmt: skip

    assert dig("voip.gatecrash.test") == "192.0.2.7"
    assert dig("chat.gatecrash.test") == topology.addr("chat")
    (event,) = [e for e in _events(log, "dns_poison") if e["action"] == "forge"]
    assert "2 forged A 192.0.2.7" in event["rule"]
    engine_events = _events(log, "engine")
    assert engine_events[0]["action"] == "start" and engine_events[0]["analyzers"] == ["dns"]


def test_voip_blocker_profile_stops_calls_not_chat_and_a_tunnel_hides_them(tmp_path) -> None:
    from harness.runner import Runner
    from harness.scenario import parse_scenario

    scenario = parse_scenario(
        "name: voip\ntrials: 1\ncall_seconds: 2\napps: [sip, xmpp]\ntools: [direct, shadowsocks]\n"
        "xmpp: {messages: 3}\n"
        "censors: {voip: voip-blocker, media: [{type: dpi_block, protocols: [rtp]}]}\n"
    )
    results = {(r.censor, r.tool, r.app): r for r in Runner(scenario, tmp_path).run()}
    blocked = results[("voip", "direct", "sip")]
    assert blocked.outcome == "timeout" and not blocked.call.registered
    assert results[("voip", "shadowsocks", "sip")].outcome == "ok"
    assert results[("voip", "direct", "xmpp")].outcome == "ok"
    starved = results[("media", "direct", "sip")].call
    assert starved.setup_ok and starved.up.loss_pct > 90 and starved.down.loss_pct > 90
    tunneled = results[("media", "shadowsocks", "sip")].call
    assert tunneled.mos > 4.0
    events = EventLog(Path(blocked.logs["censor"])).read()
    assert any(e["technique"] == "voip-signalling" and e["action"] == "drop" for e in events)


SEND = """
import os, socket, sys
host, port, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
# random: a non-printable first byte, or 0.3 % of draws are exempt (six printable bytes first)
first = (b"\\x80" + os.urandom(255) if kind == "random"
         else b"GET / HTTP/1.1\\r\\nHost: x.test\\r\\n\\r\\n")
try:
    s = socket.create_connection((host, port), timeout=1.5)
    s.sendall(first)
    got = s.recv(len(first), socket.MSG_WAITALL)
    s.sendall(first)
    got += s.recv(len(first), socket.MSG_WAITALL)
    print("ok" if got == first * 2 else "short")
except OSError as exc:
    print(type(exc).__name__)
"""


def _send(topology, port: int, kind: str) -> str:
    out = topology["client"].run(
        [sys.executable, "-c", SEND, topology.addr("voip"), str(port), kind], check=False
    )
    return out.stdout.strip()


def _echo(topology, supervisor, *ports: int) -> None:
    for port in ports:
        proc = supervisor.start(topology["voip"], f"echo{port}",
                                [sys.executable, "-m", "harness.net.echo", "serve", "--host",
                                 topology.addr("voip"), "--port", str(port)])  # fmt: skip
        proc.wait_for_event("ready", 5)


def test_fet_block_stops_random_looking_first_payload(topology, supervisor, tmp_path) -> None:
    _echo(topology, supervisor, 7000)
    _, log = _censor(topology, supervisor, tmp_path, FetBlock(action="drop", residual=2))
    assert _send(topology, 7000, "http") == "ok"
    assert _send(topology, 7000, "random") == "TimeoutError"
    assert _send(topology, 7000, "http") != "ok", "residual: the 3-tuple is still blocked"
    time.sleep(2.2)
    assert _send(topology, 7000, "http") == "ok"
    (event,) = [e for e in _events(log, "fet_block") if e["action"] == "drop"]
    assert event["analyzer"]["fet"]["yes"] is True


def test_protocol_whitelist_iran_2020(topology, supervisor, tmp_path) -> None:
    _echo(topology, supervisor, 443, 7000)
    strict = ProtocolWhitelist(residual=2, other_ports="drop")  # a whitelist, stricter
    _, log = _censor(topology, supervisor, tmp_path, strict)
    assert _send(topology, 443, "http") == "ok"  # two HTTP-looking data packets on 443
    assert _send(topology, 7000, "http") == "TimeoutError"  # port not allowed
    assert _send(topology, 443, "random") == "TimeoutError"  # not DNS/HTTP/TLS
    assert _send(topology, 443, "http") != "ok", "60 s rule (2 s here) on the 3-tuple"
    time.sleep(2.2)
    assert _send(topology, 443, "http") == "ok"
    actions = [e["action"] for e in _events(log, "protocol_whitelist")]
    assert actions.count("drop") == 2 and "residual-drop" in actions and "pass" in actions


def test_kernel_blocks_hold_for_flows_the_engine_is_still_reading(
    topology, supervisor, tmp_path
) -> None:
    """A packet the engine accepts undecided leaves the iptables chain, so the queue rule
    comes after every kernel rule: with sni_filter reading UDP (as possible QUIC) beside an
    ip_block of `voip`, no datagram to `voip` may pass, not even a flow's first ones."""
    from censor_sims.techniques.ip_block import IpBlock

    echo = [sys.executable, "-m", "harness.net.echo"]
    server = supervisor.start(topology["voip"], "echo", [*echo, "serve", "--host",
                              topology.addr("voip"), "--port", "4000"])  # fmt: skip
    server.wait_for_event("ready", 5)
    _censor(topology, supervisor, tmp_path, SniFilter(names=["blocked.test"]),
            IpBlock(hosts=["voip"]))  # fmt: skip
    received = 0
    for _ in range(10):  # ten flows (a new source port each), one datagram each
        out = topology["client"].run([*echo, "udp", "--host", topology.addr("voip"), "--port",
                                      "4000", "--count", "1", "--wait", "0.2"])  # fmt: skip
        received += json.loads(out.stdout.strip().splitlines()[-1])["received"]
    assert received == 0
