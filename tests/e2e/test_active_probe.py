"""active_probe against real servers: a naive echo server (answers a replayed first packet
with data) gets its IP blocked; the Psiphon-like OSSH server (rejects replayed seeds, stays
silent to random bytes) does not; shadowsocks-libev 3.3.5's reaction to the probes is
measured and recorded. Each client connection starts with random-looking bytes, so the FET
analyzer makes it a suspect; the censor probes from its own host, inside the topology."""

from __future__ import annotations

import json
import secrets
import sys
import time

import pytest

from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.techniques.active_probe import ActiveProbe

pytestmark = pytest.mark.e2e

ECHO_PORT, OSSH_PORT, SS_PORT = 7000, 4443, 8388
KEYWORD, PASSWORD = "probe-test-keyword", "probe-test-password"

CLIENT = """
import json, os, socket, sys
from harness.tools.psiphon_like import obfuscator as ob
kind, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
# random: a non-printable first byte, or 0.3 % of draws are FET-exempt (six printable bytes)
first = (ob.client_preamble(sys.argv[4].encode())[0] if kind == "ossh"
         else b"\\x80" + os.urandom(255))
try:
    with socket.create_connection((host, port), 2) as s:
        s.sendall(first)
        s.settimeout(2)
        print(json.dumps({"answer": len(s.recv(65536))}))
except OSError as exc:
    print(json.dumps({"error": type(exc).__name__}))
"""


def _client(topology, kind: str, role: str, port: int) -> dict:
    out = topology["client"].run(
        [sys.executable, "-c", CLIENT, kind, topology.addr(role), str(port), KEYWORD],
        check=False, timeout=10,
    )  # fmt: skip
    return json.loads(out.stdout)


def _wait_verdicts(log: EventLog, servers: set[str], timeout: float = 8.0) -> dict[str, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        verdicts = {e["server"]: e for e in log.read() if e["action"] == "probe-verdict"}
        if servers <= set(verdicts):
            # the block (if any) is written right after the verdict
            time.sleep(0.1)
            return verdicts
        time.sleep(0.05)
    raise AssertionError(f"no probe verdict for {servers - set(verdicts)}: {log.read()}")


def _start_servers(topology, supervisor) -> None:
    echo = supervisor.start(topology["voip"], "echo",
                            [sys.executable, "-m", "harness.net.echo", "serve", "--host",
                             topology.addr("voip"), "--port", str(ECHO_PORT)])  # fmt: skip
    ossh = supervisor.start(topology["proxy"], "ossh-server",
                            [sys.executable, "-m", "harness.tools.psiphon_like.server",
                             "--listen", f"{topology.addr('proxy')}:{OSSH_PORT}",
                             "--keyword", KEYWORD, "--password", PASSWORD])  # fmt: skip
    echo.wait_for_event("ready", 5)
    ossh.wait_for_event("listening", 5)


def test_echoing_server_is_blocked_and_ossh_server_is_not(topology, supervisor, tmp_path) -> None:
    _start_servers(topology, supervisor)
    log = EventLog(tmp_path / "censor.jsonl")
    probe = ActiveProbe(delay=0.2, timeout=1.0, replays=2, random_lengths=[8, 50, 221], block=30)
    censor = Censor(topology["censor"], [probe], topology.addresses.as_dict(), log, supervisor,
                    tmp_path)  # fmt: skip
    censor.start()

    # Both genuine first connections work: the censor lets suspects through and probes later.
    assert _client(topology, "random", "voip", ECHO_PORT) == {"answer": 256}
    assert _client(topology, "ossh", "proxy", OSSH_PORT)["answer"] > 0
    echo_server = f"{topology.addr('voip')}:{ECHO_PORT}"
    ossh_server = f"{topology.addr('proxy')}:{OSSH_PORT}"
    verdicts = _wait_verdicts(log, {echo_server, ossh_server})

    assert verdicts[echo_server]["proxy"] is True
    assert "replayed first packet" in verdicts[echo_server]["reason"]
    assert verdicts[ossh_server]["proxy"] is False
    probes = [e for e in log.read() if e["action"] == "probe"]
    ossh_probes = [e for e in probes if e["server"] == ossh_server]
    assert len(ossh_probes) == 5 and {e["outcome"] for e in ossh_probes} == {"timeout"}
    echo_replays = [e for e in probes if e["server"] == echo_server and e["probe"] == "replay"]
    assert [(e["outcome"], e["received"]) for e in echo_replays] == [("data", 256)] * 2
    (block,) = [e for e in log.read() if e["action"] == "block"]
    assert block["server"] == topology.addr("voip") and block["seconds"] == 30

    # The blocked IP is unreachable on any port; the OSSH server still serves fresh seeds.
    assert _client(topology, "random", "voip", ECHO_PORT) == {"error": "TimeoutError"}
    assert _client(topology, "ossh", "proxy", OSSH_PORT)["answer"] > 0
    ossh_log = (tmp_path / "logs" / "proxy.ossh-server.out").read_text()
    assert "duplicate obfuscation seed" in ossh_log  # the replay was seen and refused

    censor.stop()
    dropped = [e for e in log.read() if e["action"] == "matched" and "servers that" in
               e.get("purpose", "")]  # fmt: skip
    assert sum(e["packets"] for e in dropped) >= 1


def test_shadowsocks_libev_reaction_to_probes_is_recorded(topology, supervisor, tmp_path) -> None:
    """Measured, not assumed: what ss-server 3.3.5 (AEAD, its salt replay filter) does with a
    replayed first packet and with random bytes, as the censor's probes record it."""
    password = secrets.token_hex(8)
    common = ["-k", password, "-m", "chacha20-ietf-poly1305", "-v"]
    server = supervisor.start(topology["proxy"], "ss-server",
                              ["ss-server", "-s", topology.addr("proxy"), "-p", str(SS_PORT),
                               *common])  # fmt: skip
    local = supervisor.start(topology["client"], "ss-local",
                             ["ss-local", "-s", topology.addr("proxy"), "-p", str(SS_PORT),
                              "-b", "127.0.0.1", "-l", "1080", *common])  # fmt: skip
    echo = supervisor.start(topology["voip"], "echo",
                            [sys.executable, "-m", "harness.net.echo", "serve", "--host",
                             topology.addr("voip"), "--port", str(ECHO_PORT)])  # fmt: skip
    for proc, what in ((server, "listening"), (local, "listening")):
        proc.wait_for_line(what, 5)
    echo.wait_for_event("ready", 5)
    log = EventLog(tmp_path / "censor.jsonl")
    probe = ActiveProbe(delay=0.2, timeout=1.0, replays=2, random_lengths=[8, 50, 221],
                        criteria=["replay_data", "length_threshold"])  # fmt: skip
    Censor(topology["censor"], [probe], topology.addresses.as_dict(), log, supervisor,
           tmp_path).start()  # fmt: skip

    via = topology["client"].run(
        [sys.executable, "-m", "harness.net.echo", "tcp", "--host", topology.addr("voip"),
         "--port", str(ECHO_PORT), "--socks", "127.0.0.1:1080"],
        check=False, timeout=15,
    )  # fmt: skip
    assert json.loads(via.stdout.splitlines()[-1])["ok"] is True, via
    ss_server = f"{topology.addr('proxy')}:{SS_PORT}"
    verdict = _wait_verdicts(log, {ss_server})[ss_server]
    probes = {(e["probe"], e["length"]): e["outcome"] for e in log.read()
              if e["action"] == "probe" and e["server"] == ss_server}  # fmt: skip
    print(json.dumps({"shadowsocks-libev": {f"{k}-{n}": o for (k, n), o in probes.items()},
                      "verdict": verdict["reason"]}))  # fmt: skip
    assert len(probes) >= 4 and all(o in ("data", "fin", "rst", "timeout")
                                    for o in probes.values())  # fmt: skip
    # No data ever answers a replay: the salt filter (or the auth failure) keeps it silent.
    assert all(o != "data" for (k, _), o in probes.items() if k == "replay")
