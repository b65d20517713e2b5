"""Throttling and delaying techniques measured on real traffic: curl downloads through
the TSPU-style per-flow throttle, UDP echo round trips through the userspace delay, RTP-
shaped UDP through the VoIP-scoped throttle. The figures are printed (pytest -s) and kept
in the assertion messages; they are inflated when other work shares the machine."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from censor_sims.events import EventLog
from censor_sims.technique import rate_bits
from censor_sims.techniques.bandwidth_throttle import BandwidthThrottle
from censor_sims.techniques.udp_throttle import UdpThrottle
from harness.pki import make_ca
from tests.conftest import start_censor

pytestmark = pytest.mark.e2e

ECHO = [sys.executable, "-m", "harness.net.echo"]


_censor = start_censor


def _events(log: EventLog, technique: str, action: str) -> list[dict]:
    return [e for e in log.read() if e["technique"] == technique and e["action"] == action]


def _https_files(topology, supervisor, tmp_path: Path, size: int) -> None:
    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue("front", ["twitter.test"], [topology.addr("front")])
    site = tmp_path / "site"
    site.mkdir()
    (site / "blob").write_bytes(os.urandom(size))
    for port in (443, 8443):  # s_server serves one connection at a time: one per flow
        proc = supervisor.start(topology["front"], f"s_server{port}",
                                ["openssl", "s_server", "-accept", str(port), "-cert", str(cert),
                                 "-key", str(key), "-WWW", "-quiet"], cwd=site)  # fmt: skip
        proc.wait_until(lambda p=port: topology["front"].listening(p), 5, f"port {port}")


def _download(topology, name: str, port: int = 443) -> subprocess.Popen[str]:
    argv = ["curl", "-sk", "-o", "/dev/null", "--max-time", "15", "-w", "%{speed_download}",
            "--resolve", f"{name}:{port}:{topology.addr('front')}",
            f"https://{name}:{port}/blob"]  # fmt: skip
    return subprocess.Popen(topology["client"].wrap(argv), stdout=subprocess.PIPE, text=True)


def test_bandwidth_throttle_limits_each_matching_flow(topology, supervisor, tmp_path) -> None:
    rate = "140kbit"
    _https_files(topology, supervisor, tmp_path, 56_000)
    _, log = _censor(topology, supervisor, tmp_path,
                     BandwidthThrottle(names=["twitter.test"], rate=rate, slots=4))  # fmt: skip
    free = _download(topology, "free.test")
    free.wait(15)
    flows = [_download(topology, "twitter.test"), _download(topology, "api.twitter.test", 8443)]
    speeds = [float(p.communicate(timeout=20)[0]) * 8 for p in flows]  # bit/s
    free_speed = float(free.communicate()[0]) * 8
    target = rate_bits(rate)
    figures = (f"two concurrent throttled flows: {speeds[0] / 1e3:.1f} and "
               f"{speeds[1] / 1e3:.1f} kbit/s goodput at {rate} per flow; unthrottled "
               f"{free_speed / 1e6:.1f} Mbit/s")  # fmt: skip
    print(figures)
    # Per flow, not shared: each gets close to the rate (shared, each would get half).
    for speed in speeds:
        assert 0.8 * target <= speed <= 1.05 * target, figures
    assert free_speed > 20 * target, figures
    throttled = _events(log, "bandwidth_throttle", "throttle")
    assert len(throttled) == 2 and {e["rule"].split("slot ")[1] for e in throttled} == {"0)", "1)"}
    assert throttled[0]["analyzer"]["tls"]["sni"].endswith("twitter.test")


RTT = """
import json, socket, sys, time
host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
rtts = []
for i in range(count):
    sent = time.monotonic()
    s.sendto(b"gc-echo-%d" % i, (host, port))
    try:
        while s.recv(64) != b"gc-echo-%d" % i:
            pass
        rtts.append((time.monotonic() - sent) * 1000)
    except TimeoutError:
        pass
print(json.dumps(rtts))
"""


def _rtts(topology, port: int, count: int) -> list[float]:
    out = topology["client"].run([sys.executable, "-c", RTT, topology.addr("voip"), str(port),
                                  str(count)])  # fmt: skip
    return json.loads(out.stdout)


def _echo(topology, supervisor, *ports: int) -> None:
    for port in ports:
        proc = supervisor.start(topology["voip"], f"echo{port}",
                                [*ECHO, "serve", "--host", topology.addr("voip"),
                                 "--port", str(port)])  # fmt: skip
        proc.wait_for_event("ready", 5)


def test_udp_throttle_adds_delay_and_jitter_in_userspace(topology, supervisor, tmp_path) -> None:
    _echo(topology, supervisor, 4000, 4001)
    censor, log = _censor(topology, supervisor, tmp_path,
                          UdpThrottle(ports=[4000], delay=60, jitter=20))  # fmt: skip
    base = _rtts(topology, 4001, 10)
    rtts = _rtts(topology, 4000, 30)
    added = [r - statistics.median(base) for r in rtts]
    figures = (f"configured 2 x (60 +- 20 ms); measured added RTT mean {statistics.mean(added):.1f}"
               f" ms, stdev {statistics.stdev(added):.1f} ms, min {min(added):.1f}, max "
               f"{max(added):.1f} ms over {len(rtts)} echoes; baseline median "
               f"{statistics.median(base):.2f} ms")  # fmt: skip
    print(figures)
    assert len(rtts) == 30 and len(base) == 10, figures
    # Both legs are held: expect 120 ms, uniform jitter of each leg +- 20 ms (stdev ~16 ms).
    assert 110 <= statistics.mean(added) <= 140, figures
    assert 6 <= statistics.stdev(added) <= 30, figures
    assert min(added) >= 78 and max(added) <= 200, figures  # timers never fire early
    (method,) = _events(log, "udp_throttle", "delay-method")
    assert method["method"] == "userspace NFQUEUE hold"
    delays = _events(log, "udp_throttle", "delay")
    assert len(delays) == 1 and ":4000" in delays[0]["flow"] and delays[0]["delay_ms"] == 60
    censor.stop()
    assert sum(e["packets"] for e in _events(log, "udp_throttle", "matched")) >= 60


RTP = """
import json, os, socket, struct, sys, time
host, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rtp = sys.argv[5] == "rtp"
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((host, port))
s.setblocking(False)
got = set()
payload = os.urandom(size)
for i in range(count):
    head = struct.pack("!BBHII", 0x80, 0, i, i * 160, 0x1234) if rtp else b"gc-udp--"
    s.send(head + struct.pack("!I", i) + payload)
    time.sleep(0.01)
    try:
        while True:
            got.add(struct.unpack("!I", s.recv(2048)[12 if rtp else 8:][:4])[0])
    except BlockingIOError:
        pass
time.sleep(1)
try:
    while True:
        got.add(struct.unpack("!I", s.recv(2048)[12 if rtp else 8:][:4])[0])
except BlockingIOError:
    pass
print(json.dumps({"sent": count, "received": len(got)}))
"""


def _stream(topology, port: int, count: int, size: int, kind: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", RTP, topology.addr("voip"), str(port), str(count), str(size),
            kind]  # fmt: skip
    return subprocess.Popen(topology["client"].wrap(argv), stdout=subprocess.PIPE, text=True)


def _received(proc: subprocess.Popen[str]) -> int:
    return json.loads(proc.communicate(timeout=20)[0])["received"]


def test_udp_throttle_voip_scope_loss_spares_other_udp(topology, supervisor, tmp_path) -> None:
    _echo(topology, supervisor, 5004, 5006)
    _, log = _censor(topology, supervisor, tmp_path, UdpThrottle(scope="voip", loss=0.5))
    rtp, other = _stream(topology, 5004, 100, 160, "rtp"), _stream(topology, 5006, 100, 160, "udp")
    got_rtp, got_other = _received(rtp), _received(other)
    print(f"voip scope, loss 50% each leg: RTP echoes {got_rtp}/100, other UDP {got_other}/100")
    assert got_other == 100
    assert 10 <= got_rtp <= 45, got_rtp  # 0.5 x 0.5 = 25% expected both ways (after the first)
    (event,) = _events(log, "udp_throttle", "throttle")
    assert "recognised as rtp" in event["rule"] and ":5004" in event["flow"]


def test_udp_throttle_rate_per_flow_vs_aggregate(topology, supervisor, tmp_path) -> None:
    _echo(topology, supervisor, 6000, 6001)
    _censor(topology, supervisor, tmp_path,
            UdpThrottle(name="per-flow", rate="80kbit", per="flow", ports=[6000], queue=5),
            UdpThrottle(name="aggregate", rate="80kbit", ports=[6001], queue=5))  # fmt: skip
    # Each stream: 150 datagrams of ~200 bytes IP in 1.5 s = about 160 kbit/s.
    procs = [_stream(topology, port, 150, 160, "udp") for port in (6000, 6000, 6001, 6001)]
    got = [_received(p) for p in procs]
    figures = f"echoes of 150 at 80kbit: per flow {got[:2]}, aggregate {got[2:]}"
    print(figures)
    # Per flow: each flow alone gets about what the two aggregate flows share.
    assert sum(got[:2]) >= 1.5 * sum(got[2:]), figures
    assert min(got[:2]) >= 0.7 * sum(got[2:]), figures


SINK = """
import socket, sys
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print('{"event": "ready"}', flush=True)
while True:
    conn, _ = srv.accept()
    total = 0
    while data := conn.recv(65536):
        total += len(data)
    conn.sendall(b"%d" % total)
    conn.close()
"""

UPLOAD = """
import os, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=15)
s.sendall(b"POST /upload HTTP/1.1\\r\\nHost: x.test\\r\\n\\r\\n")
time.sleep(0.2)  # the engine decides on the request before the bulk follows
start = time.monotonic()
s.sendall(os.urandom(int(sys.argv[3])))
s.shutdown(socket.SHUT_WR)
got = int(s.recv(64))
print(got * 8 / (time.monotonic() - start))
"""


def test_bandwidth_throttle_class_triggered_limits_uploads(topology, supervisor, tmp_path) -> None:
    rate = "140kbit"
    for port in (8080,):
        sink = supervisor.start(
            topology["voip"],
            f"sink{port}",
            [sys.executable, "-c", SINK, topology.addr("voip"), str(port)],
        )
        sink.wait_for_event("ready", 5)
    _, log = _censor(topology, supervisor, tmp_path,
                     BandwidthThrottle(protocols=["http"], rate=rate))  # fmt: skip

    def upload(port: int, size: int) -> float:
        out = topology["client"].run([sys.executable, "-c", UPLOAD, topology.addr("voip"),
                                      str(port), str(size)])  # fmt: skip
        return float(out.stdout)

    speed = upload(8080, 100_000)
    figures = f"class-triggered (http) upload: {speed / 1e3:.1f} kbit/s at {rate} per flow"
    print(figures)
    assert 0.8 * rate_bits(rate) <= speed <= 1.05 * rate_bits(rate), figures
    (event,) = _events(log, "bandwidth_throttle", "throttle")
    assert event["rule"].startswith("flow recognised as http")
    assert event["analyzer"]["http"]["method"] == "POST"
