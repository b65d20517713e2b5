"""XMPP agents against a real Prosody, directly, through shadowsocks, and when blocked.

Two namespaces of this test's own (client, server) joined by one veth pair; the firewall
rules that play the censor live in the server namespace. Nothing is created in the host's
namespace, and the namespaces are deleted whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.apps.xmpp.prosody import ProsodyConfig, prepare, prosody_argv
from harness.pki import make_ca
from harness.results import MessageMetrics
from harness.topology.base import Host, run_checked
from harness.topology.process import ManagedProcess, Supervisor

pytestmark = pytest.mark.e2e

PREFIX = f"gcxmpptest-{os.getpid()}"
CLIENT_IP, SERVER_IP = "10.203.0.1", "10.203.0.2"
DOMAIN = "chat.test"
ACCOUNTS = {"alice": "alice-pw-1", "bob": "bob-pw-2"}
SS_PORT, SOCKS_PORT, SS_PASSWORD = 8388, 1080, "gatecrash-ss"
SS_METHOD = "chacha20-ietf-poly1305"

# A resolver that knows one name: the run's DNS as the agents see it.
DNS_SERVER = """
import sys, time
from dnslib import RR, QTYPE, RCODE
from dnslib.server import DNSServer, BaseResolver
class R(BaseResolver):
    def resolve(self, request, handler):
        reply = request.reply()
        if str(request.q.qname).rstrip(".") == sys.argv[2] and request.q.qtype == QTYPE.A:
            reply.add_answer(*RR.fromZone(f"{sys.argv[2]}. 60 A {sys.argv[3]}"))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply
DNSServer(R(), address=sys.argv[1], port=53).start_thread()
print("dns ready", flush=True)
while True:
    time.sleep(3600)
"""


@dataclass
class Lab:
    client: Host
    server: Host
    ca_file: Path
    supervisor: Supervisor
    prosody_ready_ms: float


def _ns(*argv: str) -> None:
    run_checked(["ip", *argv])


def _remove_namespaces(names: list[str]) -> None:
    """Kill what still runs in our namespaces (ours by construction), then delete them."""
    for ns in names:
        pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)


def _wait(check: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} within {timeout} s")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    assert os.geteuid() == 0, "end-to-end tests build namespaces: run them as root"
    for binary in ("prosody", "ss-server", "ss-local", "iptables"):
        assert shutil.which(binary), f"{binary} is not installed"
    work = tmp_path_factory.mktemp("xmpp")
    c_ns, s_ns = f"{PREFIX}-c", f"{PREFIX}-s"
    supervisor = Supervisor(work / "logs")
    try:
        _ns("netns", "add", c_ns)
        _ns("netns", "add", s_ns)
        # The veth pair is created inside the client namespace: the host never sees it.
        _ns(
            "-n", c_ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", s_ns
        )
        for ns, ip in ((c_ns, CLIENT_IP), (s_ns, SERVER_IP)):
            _ns("-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            _ns("-n", ns, "link", "set", "eth0", "up")
            _ns("-n", ns, "link", "set", "lo", "up")
        client = Host("client", CLIENT_IP, ["ip", "netns", "exec", c_ns])
        server = Host("server", SERVER_IP, ["ip", "netns", "exec", s_ns])

        ca = make_ca(work / "ca")
        cert, key = ca.issue(DOMAIN, [DOMAIN], [SERVER_IP])
        cfg = ProsodyConfig(work / "prosody", SERVER_IP, DOMAIN)
        prepare(cfg, cert, key, ACCOUNTS)
        started = time.monotonic()
        prosody = supervisor.start(server, "prosody", prosody_argv(cfg))
        prosody.wait_for_line(cfg.ready_pattern, timeout=10)
        ready_ms = (time.monotonic() - started) * 1000

        ss = ["-k", SS_PASSWORD, "-m", SS_METHOD]
        supervisor.start(
            server, "ss-server", ["ss-server", "-s", SERVER_IP, "-p", str(SS_PORT), *ss]
        )
        local = ["ss-local", "-s", SERVER_IP, "-p", str(SS_PORT), "-b", "127.0.0.1"]
        supervisor.start(client, "ss-local", [*local, "-l", str(SOCKS_PORT), *ss])
        dns = supervisor.start(
            server, "dns", [sys.executable, "-c", DNS_SERVER, SERVER_IP, DOMAIN, SERVER_IP]
        )
        dns.wait_for_line("dns ready", timeout=10)
        _wait(lambda: server.listening(SS_PORT), 5, "ss-server listening")
        _wait(lambda: client.listening(SOCKS_PORT), 5, "ss-local listening")
        yield Lab(client, server, ca.cert_path, supervisor, ready_ms)
    finally:
        supervisor.stop_all()
        _remove_namespaces([c_ns, s_ns])


class IptablesRule:
    """A rule in a namespace's filter table for the duration of a `with` block."""

    def __init__(self, host: Host, rule: list[str]) -> None:
        self.host, self.chain, self.spec = host, rule[0], rule[1:]

    def __enter__(self) -> None:
        done = self.host.run(["iptables", "-w", "-I", self.chain, *self.spec], check=False)
        assert done.returncode == 0, f"iptables {' '.join(self.spec)}: {done.stderr}"

    def __exit__(self, *exc: object) -> None:
        self.host.run(["iptables", "-w", "-D", self.chain, *self.spec])


PORT = ["-p", "tcp", "--dport", "5222"]
RST = ["-j", "REJECT", "--reject-with", "tcp-reset"]
STARTTLS = ["-m", "string", "--string", "<starttls", "--algo", "bm"]


def _agent_argv(lab: Lab, role: str, user: str, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "harness.apps.xmpp.agent", role,
        "--server", SERVER_IP, "--domain", DOMAIN, "--jid", f"{user}@{DOMAIN}",
        "--password", ACCOUNTS[user], "--ca", str(lab.ca_file), *extra,
    ]  # fmt: skip


def _with(argv: list[str], **options: str) -> list[str]:
    """Replace or add `--option value` pairs of an agent command line."""
    argv = list(argv)
    for name, value in options.items():
        flag = "--" + name.replace("_", "-")
        if flag in argv:
            argv[argv.index(flag) + 1] = value
        else:
            argv += [flag, value]
    return argv


def _result(proc: ManagedProcess) -> dict[str, Any]:
    return next(e for e in proc.json_events() if e["event"] == "result")


def _send(lab: Lab, name: str, *extra: str, **options: str) -> dict[str, Any]:
    argv = _with(_agent_argv(lab, "sender", "alice", "--to", f"bob@{DOMAIN}", *extra), **options)
    proc = lab.supervisor.start(lab.client, name, argv)
    assert proc.wait_exit(30) == 0, proc.tail()
    return _result(proc)


def _start_receiver(lab: Lab, name: str) -> tuple[ManagedProcess, dict[str, Any]]:
    proc = lab.supervisor.start(lab.server, name, _agent_argv(lab, "receiver", "bob"))
    return proc, proc.wait_for_event("ready", timeout=10)


def _assert_all_delivered(result: dict[str, Any], count: int) -> None:
    assert result["outcome"] == "ok", result
    assert result["connected"] and result["connect_ms"] > 0
    assert result["sent"] == result["delivered"] == count, result
    assert all(v is not None and v > 0 for v in result["latencies_ms"]), result
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p95"]
    MessageMetrics.model_validate({k: result[k] for k in MessageMetrics.model_fields})


def _conversation(lab: Lab, name: str, *extra: str, **options: str) -> dict[str, Any]:
    receiver, ready = _start_receiver(lab, f"{name}-rx")
    assert ready["connect_ms"] > 0
    result = _send(lab, f"{name}-tx", *extra, **options)
    assert receiver.wait_exit(10) == 0, receiver.tail()
    rx = _result(receiver)
    assert rx["outcome"] == "ok" and rx["error"] is None, rx  # left on "bye"
    result["receiver_received"] = rx["received"]
    return result


def test_direct_ten_messages_delivered(lab: Lab) -> None:
    result = _conversation(lab, "direct", "--count", "10", "--interval-ms", "50")
    _assert_all_delivered(result, 10)
    assert result["receiver_received"] == 10
    assert lab.prosody_ready_ms < 5000
    print(f"prosody ready {lab.prosody_ready_ms:.0f} ms; direct: {json.dumps(result)}")


def test_through_shadowsocks_socks5(lab: Lab) -> None:
    """With direct port 5222 rejected, only the shadowsocks tunnel can carry the session."""
    rule = ["INPUT", "-s", CLIENT_IP, "-p", "tcp", "--dport", "5222", "-j", "REJECT",
            "--reject-with", "tcp-reset"]  # fmt: skip
    with IptablesRule(lab.server, rule):
        assert _send(lab, "ss-blocked-direct", "--count", "1", timeout="3")["outcome"] == "refused"
        result = _conversation(lab, "ss", "--count", "10", "--socks", f"127.0.0.1:{SOCKS_PORT}")
    _assert_all_delivered(result, 10)
    assert result["receiver_received"] == 10
    print(f"via shadowsocks: {json.dumps(result)}")


def test_server_name_through_resolver(lab: Lab) -> None:
    result = _conversation(lab, "dns", "--count", "2", "--resolver", SERVER_IP, server=DOMAIN)
    _assert_all_delivered(result, 2)
    failed = _send(lab, "dns-nx", "--resolver", SERVER_IP, server="nx.chat.test")
    assert failed["outcome"] == "dns-failure" and "NXDOMAIN" in failed["error"], failed
    assert not failed["connected"] and failed["sent"] == 0


@pytest.mark.parametrize(
    ("rule", "outcome"),
    [
        # An RST answering the SYN is ECONNREFUSED to the client: same as a closed port.
        (["INPUT", *PORT, "--syn", *RST], "refused"),
        # Handshake allowed, everything after it answered with an RST.
        (["INPUT", *PORT, "!", "--syn", *RST], "reset"),
        (["INPUT", *PORT, "-j", "DROP"], "timeout"),
        # DPI-style: the stream opens, the STARTTLS request is what gets reset / dropped.
        (["INPUT", *PORT, *STARTTLS, *RST], "reset"),
        (["INPUT", *PORT, *STARTTLS, "-j", "DROP"], "timeout"),
    ],
    ids=["rst-on-syn", "rst-after-handshake", "drop", "rst-on-starttls", "drop-on-starttls"],
)
def test_blocked_port_outcome(
    lab: Lab, rule: list[str], outcome: str, request: pytest.FixtureRequest
) -> None:
    timeout = 2.0
    with IptablesRule(lab.server, rule):
        started = time.monotonic()
        name = f"blocked-{request.node.callspec.id}"
        result = _send(lab, name, "--count", "3", timeout=str(timeout))
        wall = time.monotonic() - started
    assert result["outcome"] == outcome, result
    assert not result["connected"] and result["sent"] == result["delivered"] == 0
    assert result["error"]
    assert wall < timeout + 3, f"agent took {wall:.1f} s with --timeout {timeout}"


def test_wrong_ca_is_tls_alert(lab: Lab, tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other-ca")
    result = _send(lab, "wrong-ca", "--count", "1", ca=str(other.cert_path))
    assert result["outcome"] == "tls-alert", result
    assert "CERTIFICATE_VERIFY_FAILED" in result["error"]
