"""Real calls between the SIP agents through Kamailio, in two network namespaces of this
test's own joined by a veth pair: `in` (the caller) and `out` (Kamailio, the callee).

Also checked against Wireshark: with packets dropped deterministically (iptables `nth` in
the SENDER's namespace, OUTPUT chain, so a capture on the receiver's interface sees exactly
what the receiver gets), `tshark -z rtp,streams` must count the same packets and losses and
the same mean/max jitter as our receiver. tshark's columns, per stream (src -> dst, SSRC):
Pkts = packets seen; Lost = expected - seen, expected = last - first sequence number + 1
(with wraps), the RFC 3550 A.1 figure, "(x%)" of expected; Min/Mean/Max Delta = spacing of
consecutive arrivals (ms); Min/Mean/Max Jitter = the RFC 3550 A.8 running jitter in ms after
each packet but the first, its minimum, mean and maximum (ui/tap-rtp-analysis.c).

Nothing runs in the host's namespace: the veth is created inside `in` with its peer placed
in `out`; every iptables rule lives in these namespaces; the host's links, routes and
firewall are compared before and after.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from harness.apps.sip.kamailio import kamailio_argv, kamailio_config
from harness.media.rtpstats import ReceiverStats
from harness.topology.process import ManagedProcess, Supervisor
from tests.conftest import REPO, host_network_state

pytestmark = pytest.mark.e2e

PREFIX = f"gcsiptest-{os.getpid()}"
NETNS_ETC = Path("/etc/netns")
IN_IP, OUT_IP = "10.77.0.1", "10.77.0.2"
DOMAIN = "voip.gatecrash.test"
AGENT = [sys.executable, "-m", "harness.apps.sip.agent"]
SS_PORT, SS_LOCAL = 8388, "127.0.0.1:1080"
_serial = itertools.count()


@dataclass
class NsHost:
    """A host for the Supervisor: commands run under `ip netns exec`."""

    name: str
    ns: str
    addr: str

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.ns, *argv]

    def run(self, argv: Sequence[str], check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(self.wrap(argv), capture_output=True, text=True, check=check)


@dataclass
class SipNet:
    inside: NsHost
    outside: NsHost
    dir: Path
    sup: Supervisor


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True, text=True)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[SipNet]:
    assert os.geteuid() == 0, "end-to-end tests build namespaces: run them as root"
    before = host_network_state()
    serial = next(_serial)
    hosts = [
        NsHost("in", f"{PREFIX}-{serial}-in", IN_IP),
        NsHost("out", f"{PREFIX}-{serial}-out", OUT_IP),
    ]
    sup = Supervisor(tmp_path / "logs")
    try:
        for host in hosts:
            # Own resolv.conf/hosts (bind-mounted by `ip netns exec`): nothing may ask the
            # host's resolver, and nothing here should need a name at all.
            etc = NETNS_ETC / host.ns
            etc.mkdir(parents=True, exist_ok=True)
            (etc / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1\n")
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{host.addr} {host.name}\n")
            _ip("netns", "add", host.ns)
        inside, outside = hosts
        _ip("-n", inside.ns, "link", "add", "eth0", "type", "veth", "peer", "eth0", "netns",
            outside.ns)  # fmt: skip
        for host in hosts:
            _ip("-n", host.ns, "link", "set", "lo", "up")
            _ip("-n", host.ns, "addr", "add", f"{host.addr}/24", "dev", "eth0")
            _ip("-n", host.ns, "link", "set", "eth0", "up")
        yield SipNet(inside, outside, tmp_path, sup)
    finally:
        sup.stop_all()
        for host in hosts:
            pids = subprocess.run(["ip", "netns", "pids", host.ns], capture_output=True, text=True)
            for pid in pids.stdout.split():  # only what this test started can live here
                os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True)
            shutil.rmtree(NETNS_ETC / host.ns, ignore_errors=True)
    assert host_network_state() == before


def start_kamailio(net: SipNet, host: NsHost | None = None) -> ManagedProcess:
    host = host or net.outside
    run = net.dir / f"kamailio-{host.name}"
    run.mkdir()
    cfg = run / "kamailio.cfg"
    cfg.write_text(kamailio_config(host.addr, 5060, DOMAIN))
    proc = net.sup.start(host, f"kamailio-{host.name}", kamailio_argv(cfg, run))

    def listening() -> bool:
        udp = host.run(["ss", "-Hlun", "sport = :5060"]).stdout
        tcp = host.run(["ss", "-Hltn", "sport = :5060"]).stdout
        return bool(udp.strip() and tcp.strip())

    proc.wait_until(listening, 10, "SIP port 5060 open")
    return proc


def start_callee(net: SipNet, transport: str, *extra: str) -> ManagedProcess:
    proc = net.sup.start(
        net.outside,
        "callee",
        [*AGENT, "callee", "--registrar", f"{OUT_IP}:5060", "--domain", DOMAIN,
         "--user", "bob", "--bind", OUT_IP, "--transport", transport, "--max-wait", "30",
         *extra],
        cwd=REPO,
    )  # fmt: skip
    proc.wait_for_event("registered", 15)
    return proc


def run_caller(
    net: SipNet,
    transport: str,
    duration: float = 2.0,
    *extra: str,
    callee: str = "bob",
    registrar: str = f"{OUT_IP}:5060",
) -> dict[str, Any]:
    argv = [*AGENT, "caller", "--registrar", registrar, "--resolver", OUT_IP,
            "--domain", DOMAIN, "--user", "alice", "--callee", callee, "--bind", IN_IP,
            "--transport", transport, "--duration", str(duration), *extra]  # fmt: skip
    proc = subprocess.run(
        net.inside.wrap(argv), capture_output=True, text=True, timeout=60, cwd=REPO
    )
    (net.dir / "caller.err").write_text(proc.stderr)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def callee_result(proc: ManagedProcess) -> dict[str, Any]:
    return proc.wait_for_event("result", 10)


def _show(label: str, result: dict[str, Any]) -> None:
    rx = result["rx"]
    print(
        f"{label}: outcome={result['outcome']} setup_ms={result['setup_ms']} "
        f"pdd_ms={result['pdd_ms']} register_ms={result['register_ms']} "
        f"sent={result['rtp_sent']} rx={rx['received']}/{rx['expected']} lost={rx['lost']} "
        f"jitter_ms={rx['jitter_ms']} owd_ms={rx['owd_ms_mean']}/{rx['owd_ms_p95']}"
    )


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_call_sets_up_and_carries_media_both_ways(net: SipNet, transport: str) -> None:
    start_kamailio(net)
    callee = start_callee(net, transport)
    mine = run_caller(net, transport, 2.0)
    theirs = callee_result(callee)
    _show(f"{transport} caller", mine)
    _show(f"{transport} callee", theirs)
    assert mine["outcome"] == "ok", mine
    assert theirs["outcome"] == "ok", theirs
    assert mine["registered"] and mine["setup_ok"] and mine["final_status"] == 200
    assert 0 < mine["pdd_ms"] <= mine["setup_ms"] < 1000
    assert mine["sip_path"] == "direct" and mine["rtp_path"] == "direct"
    # The callee waits up to 0.2 s for the caller's first packet (latching) before sending.
    assert 98 <= mine["rtp_sent"] <= 101 and 85 <= theirs["rtp_sent"] <= 101
    for result in (mine, theirs):
        rx = result["rx"]
        assert rx["received"] >= 85 and rx["lost"] == 0 and rx["duplicates"] == 0
        assert rx["jitter_ms"] < 5.0
        assert 0 < rx["owd_ms_mean"] < 10
    assert theirs["rx"]["received"] == mine["rtp_sent"]
    assert mine["rx"]["received"] == theirs["rtp_sent"]
    assert theirs["rtp_latched"] == mine["rtp_local"]  # direct: source == SDP address


def test_rejections_map_to_sip_outcomes(net: SipNet) -> None:
    start_kamailio(net)
    # Ring 100 ms before the 486: kamailio's two UDP workers forward the 180 and a 486 sent
    # back to back in parallel, so the 486 may overtake the 180 (CI saw it once), and a
    # provisional after the final response is rightly ignored.
    callee = start_callee(net, "udp", "--answer-code", "486", "--answer-delay-ms", "100")
    busy = run_caller(net, "udp", 1.0)
    assert (busy["outcome"], busy["final_status"], busy["setup_ok"]) == ("sip-4xx", 486, False)
    assert busy["pdd_ms"] is not None  # it rang first
    assert callee_result(callee)["final_status"] == 486
    unknown = run_caller(net, "tcp", 1.0, callee="nobody")
    assert (unknown["outcome"], unknown["final_status"]) == ("sip-4xx", 404)
    assert unknown["registered"] and unknown["rtp_sent"] == 0


def test_network_failures_map_to_outcomes(net: SipNet) -> None:
    start_kamailio(net)
    # No DNS server behind the resolver address: ICMP port unreachable, at once.
    dns = run_caller(net, "udp", 1.0, registrar=f"{DOMAIN}:5060")
    assert dns["outcome"] == "dns-failure" and DOMAIN in dns["error"]
    refused = run_caller(net, "tcp", 1.0, registrar=f"{OUT_IP}:5099")
    assert refused["outcome"] == "refused" and not refused["registered"]
    # A keyword censor: RST when "INVITE" crosses (after REGISTER got through).
    net.outside.run(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "5060", "-m", "string",
                     "--string", "INVITE", "--algo", "bm", "-j", "REJECT", "--reject-with",
                     "tcp-reset"])  # fmt: skip
    reset = run_caller(net, "tcp", 1.0)
    assert (reset["outcome"], reset["registered"]) == ("reset", True)
    assert reset["error"].startswith("INVITE")
    # Silent drop of SIP over UDP on arrival (a drop in the sender's own OUTPUT chain would
    # fail its sendto with EPERM instead): REGISTER retransmitted, then given up.
    net.outside.run(["iptables", "-A", "INPUT", "-p", "udp", "--dport", "5060", "-j", "DROP"])
    silent = run_caller(net, "udp", 1.0, "--register-timeout", "1.5")
    assert silent["outcome"] == "timeout" and "REGISTER" in silent["error"]


def test_kamailio_instances_run_side_by_side(net: SipNet) -> None:
    """Every path comes from arguments: two instances in two namespaces do not collide."""
    first = start_kamailio(net, net.outside)
    second = start_kamailio(net, net.inside)
    assert first.running() and second.running()
    assert (net.dir / "kamailio-out" / "kamailio.pid").exists()
    assert (net.dir / "kamailio-in" / "kamailio.pid").exists()


# -- agreement with tshark ---------------------------------------------------------------

STREAM = re.compile(
    r"^\s*[\d.]+\s+[\d.]+\s+(?P<src>\S+)\s+(?P<sport>\d+)\s+(?P<dst>\S+)\s+(?P<dport>\d+)"
    r"\s+(?P<ssrc>0x[0-9A-Fa-f]+)\s+\S+\s+(?P<pkts>\d+)\s+(?P<lost>-?\d+)\s+\([-\d.]+%\)"
    r"\s+[-\d.]+\s+[-\d.]+\s+[-\d.]+\s+(?P<jmin>[-\d.]+)\s+(?P<jmean>[-\d.]+)\s+(?P<jmax>[-\d.]+)",
    re.M,
)


def rtp_streams(pcap: Path, port: int) -> dict[str, dict[str, Any]]:
    """tshark's RTP stream table, keyed by "dst:dport"."""
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-q", "-z", "rtp,streams", "-d", f"udp.port=={port},rtp"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    streams = {}
    for m in STREAM.finditer(out):
        streams[f"{m['dst']}:{m['dport']}"] = {
            "pkts": int(m["pkts"]),
            "lost": int(m["lost"]),
            "jitter_mean_ms": float(m["jmean"]),
            "jitter_max_ms": float(m["jmax"]),
        }
    return streams


def receiver_from_capture(pcap: Path, dst: str) -> ReceiverStats:
    """Our own statistics fed with the capture's timestamps instead of the socket's."""
    host, port = dst.split(":")
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-d", f"udp.port=={port},rtp",
         "-Y", f"rtp && ip.dst == {host} && udp.dstport == {port}",
         "-T", "fields", "-e", "rtp.seq", "-e", "rtp.timestamp", "-e", "frame.time_epoch"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    stats = ReceiverStats()
    for line in out.splitlines():
        seq, ts, when = line.split("\t")
        stats.add(int(seq), int(ts), int(Decimal(when) * 1_000_000_000))
    return stats


def start_capture(net: SipNet, host: NsHost) -> tuple[ManagedProcess, Path]:
    pcap = net.dir / f"{host.name}.pcapng"
    proc = net.sup.start(host, f"tshark-{host.name}", ["tshark", "-i", "eth0", "-f", "udp",
                                                        "-w", str(pcap)])  # fmt: skip
    proc.wait_for_line(r"Capturing on", 15)
    return proc, pcap


def stop_captures(*procs: ManagedProcess) -> None:
    # libpcap's TPACKET_V3 ring hands packets over a block at a time, a block when it is
    # full or its timeout expires; a stop inside that window loses the last packets (seen:
    # the call's final RTP packet). Let the block retire first.
    time.sleep(1.0)
    for proc in procs:
        os.killpg(proc.pid, signal.SIGINT)  # dumpcap writes out what it has and exits
    for proc in procs:
        assert proc.wait_exit(10) is not None


def drop_nth(host: NsHost, port_match: list[str], every: int, packet: int) -> None:
    """DROP every `every`-th RTP packet leaving `host` (OUTPUT: before the capture on the
    other end, so the capture and the receiver see the same packets)."""
    host.run(["iptables", "-A", "OUTPUT", "-o", "eth0", "-p", "udp", *port_match,
              "-m", "statistic", "--mode", "nth", "--every", str(every),
              "--packet", str(packet), "-j", "DROP"])  # fmt: skip


def test_receiver_agrees_with_tshark(net: SipNet) -> None:
    # Up (caller -> callee): every 10th RTP packet. Down: two rules in a row drop packets
    # 10 and 11 of every 25 (the second rule counts the first one's survivors): bursts of 2.
    drop_nth(net.inside, ["!", "--dport", "5060"], 10, 4)
    drop_nth(net.outside, ["!", "--sport", "5060"], 25, 10)
    drop_nth(net.outside, ["!", "--sport", "5060"], 24, 10)
    start_kamailio(net)
    callee = start_callee(net, "udp")
    cap_in, pcap_in = start_capture(net, net.inside)
    cap_out, pcap_out = start_capture(net, net.outside)
    mine = run_caller(net, "udp", 3.0)
    theirs = callee_result(callee)
    stop_captures(cap_in, cap_out)
    assert mine["outcome"] == "ok" and theirs["outcome"] == "ok"

    # Each receiver against the capture on its own namespace's interface (ingress).
    for label, receiver, pcap in (("up", theirs, pcap_out), ("down", mine, pcap_in)):
        dst = receiver["rtp_local"]
        stream = rtp_streams(pcap, int(dst.split(":")[1]))[dst]
        rx, jit = receiver["rx"], receiver["rx_jitter"]
        from_capture = receiver_from_capture(pcap, dst)
        print(
            f"{label}: tshark pkts={stream['pkts']} lost={stream['lost']} "
            f"jitter mean/max={stream['jitter_mean_ms']}/{stream['jitter_max_ms']} ms | "
            f"receiver received={rx['received']} lost={rx['lost']} jitter final="
            f"{rx['jitter_ms']} mean/max={jit['mean_ms']}/{jit['max_ms']} | "
            f"same code on capture times: final={from_capture.jitter_ms:.4f} "
            f"mean={from_capture.jitter_mean_ms:.4f} bursts={rx['mean_burst_len']} "
            f"burst_r={rx['burst_r']}"
        )
        assert stream["pkts"] == rx["received"], label
        assert stream["lost"] == rx["lost"] > 0, label
        sender = mine if receiver is theirs else theirs
        assert sender["rtp_sent"] >= rx["expected"]  # dropped sends count as sent, and lost
        # tshark prints 3 decimals. The receiver's kernel timestamps are the capture's own
        # on this interface, so the agreement is to the printed precision plus a hair.
        assert jit["mean_ms"] == pytest.approx(stream["jitter_mean_ms"], abs=0.01)
        assert jit["max_ms"] == pytest.approx(stream["jitter_max_ms"], abs=0.01)
        assert from_capture.jitter_mean_ms == pytest.approx(stream["jitter_mean_ms"], abs=6e-4)
        assert rx["jitter_ms"] == pytest.approx(from_capture.jitter_ms, abs=0.01)
        assert from_capture.lost == rx["lost"]
    assert mine["rx"]["mean_burst_len"] == 2.0 and theirs["rx"]["mean_burst_len"] == 1.0


# -- through shadowsocks ---------------------------------------------------------------


def start_shadowsocks(net: SipNet) -> None:
    common = ["-k", "gatecrash-test", "-m", "chacha20-ietf-poly1305", "-u", "-v"]
    server = net.sup.start(net.outside, "ss-server",
                           ["ss-server", "-s", OUT_IP, "-p", str(SS_PORT), *common])  # fmt: skip
    host, port = SS_LOCAL.split(":")
    local = net.sup.start(net.inside, "ss-local",
                          ["ss-local", "-s", OUT_IP, "-p", str(SS_PORT), "-b", host, "-l", port,
                           *common])  # fmt: skip
    server.wait_for_line("listening", 10)
    local.wait_for_line("listening", 10)


@pytest.mark.parametrize(("transport", "socks_udp"), [("udp", True), ("tcp", True), ("tcp", False)])
def test_call_through_shadowsocks(net: SipNet, transport: str, socks_udp: bool) -> None:
    # Only the tunnel may leave `in`: SIP and (when relayed) RTP must go through it.
    net.inside.run(["iptables", "-A", "OUTPUT", "-o", "eth0", "-p", "tcp", "!", "--dport",
                    str(SS_PORT), "-j", "DROP"])  # fmt: skip
    if socks_udp:
        net.inside.run(["iptables", "-A", "OUTPUT", "-o", "eth0", "-p", "udp", "!", "--dport",
                        str(SS_PORT), "-j", "DROP"])  # fmt: skip
    start_kamailio(net)
    start_shadowsocks(net)
    callee = start_callee(net, transport)
    extra = ["--socks", SS_LOCAL, *(["--socks-udp"] if socks_udp else [])]
    mine = run_caller(net, transport, 2.0, *extra)
    theirs = callee_result(callee)
    _show(f"ss {transport} udp={socks_udp} caller", mine)
    _show(f"ss {transport} udp={socks_udp} callee", theirs)
    assert mine["outcome"] == "ok", mine
    assert mine["sip_path"] == f"socks-{transport}"
    assert mine["rtp_path"] == ("socks-udp" if socks_udp else "direct")
    assert mine["rx"]["received"] >= 90 and theirs["rx"]["received"] >= 90
    # The callee gave the caller's first packet a moment before sending: nothing went to
    # the unreachable SDP address, every frame it sent arrived through the tunnel.
    assert mine["rx"]["received"] == theirs["rtp_sent"]
    latched_ip = theirs["rtp_latched"].split(":")[0]
    if socks_udp:
        # The caller's packets come from ss-server, not from the SDP address: the callee
        # latched onto that source, which is why media flows back at all.
        assert latched_ip == OUT_IP and theirs["rtp_latched"] != mine["rtp_local"]
    else:
        assert theirs["rtp_latched"] == mine["rtp_local"]
