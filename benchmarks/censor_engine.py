"""Benchmark (not a test): the DPI engine's speed and memory, side by side in one run.

    sudo .venv/bin/python benchmarks/censor_engine.py [--seconds 2] [--rounds 5] [--rate PPS]

Prints:
  1. packets per second through the queued path (target >= 50k pps): a UDP flood of small
     packets (32-byte payloads, 256 flows) from client to voip across the censor, every packet
     queued to the running engine (a bench-only NFQUEUE rule replaces the connbytes limit, so
     decided flows are queued too: the engine's per-packet fast path plus the kernel round
     trip). Rate = packets that arrived at voip's eth0 / flood time; the engine's own count
     is printed next to it. Also the engine's in-process verdict rate (Engine.handle on
     pre-built packets, no kernel), for comparison.
  2. bulk TCP throughput client -> voip with no censor vs with the engine on (sni_filter;
     the bulk flow is marked after its first packets), and their ratio (target >= 0.9).
     Both are measured in the same topology, alternating, median of `rounds`: "no censor"
     is a port that an ACCEPT rule first in the censor's FORWARD chain exempts from it.
  3. engine RSS (psutil) with 10k flows in the flow table (in-process Engine, flows fed as
     first packets of 10k distinct TCP connections; nothing is injected).
Root is needed (namespaces). The machine is shared: figures measured while other work runs
are lower than on an idle box.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

from censor_sims.censor import Censor
from censor_sims.engine import verdicts
from censor_sims.engine.engine import Engine
from censor_sims.engine.packet import ACK, PSH, SYN, build_tcp, build_udp
from censor_sims.events import EventLog
from censor_sims.techniques.sni_filter import SniFilter
from harness.topology.addressing import AddressPool
from harness.topology.netns import NetnsTopology
from harness.topology.process import Supervisor

BULK_PORT, BYPASS_PORT, FLOOD_PORT = 5201, 5202, 9999

RECEIVER = """
import json, socket, sys, time
srv = socket.create_server((sys.argv[1], int(sys.argv[2])))
print(json.dumps({"event": "ready"}), flush=True)
conn, _ = srv.accept()
total, start = 0, None
while chunk := conn.recv(1 << 20):
    start = start or time.monotonic()
    total += len(chunk)
print(json.dumps({"event": "done", "bytes": total, "s": time.monotonic() - start}), flush=True)
"""

SENDER = """
import socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])))
buf, end = bytes(1 << 20), time.monotonic() + float(sys.argv[3])
while time.monotonic() < end:
    s.sendall(buf)
s.close()
"""

FLOOD = """
import socket, sys, time
host, port, seconds, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(256)]
payload, sent, start = bytes(32), 0, time.monotonic()
end = start + seconds
while (now := time.monotonic()) < end:
    if rate and sent > rate * (now - start):
        time.sleep(0.0005)  # paced: leave the CPU to the engine
        continue
    for s in socks:
        s.sendto(payload, (host, port))
    sent += len(socks)
print(sent)
"""


def rx_packets(topology: NetnsTopology, role: str) -> int:
    out = topology[role].run(["cat", "/sys/class/net/eth0/statistics/rx_packets"])
    return int(out.stdout)


def bulk_mbit(
    topology: NetnsTopology, supervisor: Supervisor, seconds: float, port: int, tag: str
) -> float:
    argv = [sys.executable, "-c", RECEIVER, topology.addr("voip"), str(port)]
    rx = supervisor.start(topology["voip"], f"bulk-rx-{tag}", argv)
    rx.wait_for_event("ready", 10)
    topology["client"].run([sys.executable, "-c", SENDER, topology.addr("voip"), str(port),
                            str(seconds)], timeout=seconds + 30)  # fmt: skip
    done = rx.wait_for_event("done", 30)
    return done["bytes"] * 8 / done["s"] / 1e6


def bulk_rounds(
    topology: NetnsTopology, supervisor: Supervisor, seconds: float, rounds: int
) -> tuple[float, float]:
    """Medians of alternating runs: BYPASS_PORT skips every censor rule (an ACCEPT first in
    FORWARD: no censor), BULK_PORT goes through the engine until its flow is marked."""
    bypass = ["FORWARD", "-p", "tcp", "-m", "multiport", "--ports", str(BYPASS_PORT), "-j",
              "ACCEPT"]  # fmt: skip
    topology["censor"].run(["iptables", "-w", "-I", bypass[0], "1", *bypass[1:]])
    bare, engine_on = [], []
    for i in range(rounds):
        order = [(bare, BYPASS_PORT), (engine_on, BULK_PORT)]
        for out, port in order if i % 2 == 0 else order[::-1]:
            out.append(bulk_mbit(topology, supervisor, seconds, port, f"{port}-{i}"))
    topology["censor"].run(["iptables", "-w", "-D", *bypass])
    return statistics.median(bare), statistics.median(engine_on)


def queued_pps(
    topology: NetnsTopology, engine_pid: int, seconds: float, rate: float
) -> tuple[float, int, float]:
    """UDP flood with every packet queued: (delivered pps, packets the flood sent, the
    engine's CPU use in % of one core during the flood)."""
    engine = psutil.Process(engine_pid)
    m = f"{verdicts.MASK:#x}"
    rule = ["FORWARD", "-p", "udp", "--dport", str(FLOOD_PORT), "-m", "mark", "--mark",
            f"0/{m}", "-j", "NFQUEUE", "--queue-num", "0"]  # fmt: skip
    topology["censor"].run(["iptables", "-w", "-I", *rule[:1], "1", *rule[1:]])
    before = rx_packets(topology, "voip")
    cpu_before = sum(engine.cpu_times()[:2])
    start = time.monotonic()
    out = topology["client"].run([sys.executable, "-c", FLOOD, topology.addr("voip"),
                                  str(FLOOD_PORT), str(seconds), str(rate)],
                                 timeout=seconds + 30)  # fmt: skip
    elapsed = time.monotonic() - start
    cpu = (sum(engine.cpu_times()[:2]) - cpu_before) / elapsed * 100
    time.sleep(0.5)  # let the queue drain
    delivered = rx_packets(topology, "voip") - before
    topology["censor"].run(["iptables", "-w", "-D", *rule])
    return delivered / elapsed, int(out.stdout), cpu


def in_process_rate(seconds: float) -> float:
    """Engine.handle() on pre-built UDP packets of 256 flows (decided after the first)."""
    engine = Engine([SniFilter(names=["blocked.test"])], EventLog(Path(os.devnull)),
                    sender=_NoSender())  # fmt: skip
    packets = [build_udp("10.77.0.10", "10.77.0.138", 20000 + i, FLOOD_PORT, bytes(32))
               for i in range(256)]  # fmt: skip
    count, end = 0, time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        for raw in packets:
            engine.handle(raw)
        count += len(packets)
    return count / (time.perf_counter() - start)


class _NoSender:
    def send(self, raw: bytes) -> None:  # nothing is injected in the memory/rate measurement
        pass


def rss_at_flows(flows: int) -> tuple[float, float, int]:
    """(RSS MiB before, RSS MiB with `flows` flows, flows in the table)."""
    proc = psutil.Process()
    engine = Engine([SniFilter(names=["blocked.test"])], EventLog(Path(os.devnull)),
                    sender=_NoSender())  # fmt: skip
    before = proc.memory_info().rss / 2**20
    for i in range(flows):
        sport = 10000 + i % 50000
        src = f"10.77.{i // 50000}.{10 + i % 200}"
        engine.handle(build_tcp(src, "10.77.0.142", sport, 443, 1, 0, SYN))
        engine.handle(build_tcp(src, "10.77.0.142", sport, 443, 2, 1, PSH | ACK))
    return before, proc.memory_info().rss / 2**20, len(engine.table.flows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5, help="bulk runs per side (median)")
    parser.add_argument("--flows", type=int, default=10_000)
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="pace the flood to this many pps (0: as fast as it goes)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("censor_engine benchmark builds namespaces: run it as root")
    with tempfile.TemporaryDirectory(prefix="gc-bench-") as tmp:
        work = Path(tmp)
        topology = NetnsTopology(f"b{os.getpid() % 100000}", 0, AddressPool().acquire(), work)
        supervisor = Supervisor(work / "logs")
        with topology:
            try:
                log = EventLog(work / "censor.jsonl")
                censor = Censor(topology["censor"], [SniFilter(names=["blocked.test"])],
                                topology.addresses.as_dict(), log, supervisor, work)  # fmt: skip
                censor.start()
                bare, engine_on = bulk_rounds(topology, supervisor, args.seconds, args.rounds)
                engine_pid = next(p.pid for p in supervisor.processes if p.name == "engine")
                pps, sent, cpu = queued_pps(topology, engine_pid, args.seconds, args.rate)
            finally:
                supervisor.stop_all()
            stop = next((e for e in log.read() if e["action"] == "stop"), {})
        handled = in_process_rate(1.0)
        rss_before, rss_after, in_table = rss_at_flows(args.flows)
    ratio = engine_on / bare
    rows = [
        ("queued path, UDP flood, every packet queued", f"{pps:,.0f} pps", ">= 50,000 pps",
         pps >= 50_000),
        ("  flood sent / engine saw (packets)", f"{sent:,} / {stop.get('packets', 0):,}", "",
         None),
        ("  engine CPU during the flood", f"{cpu:.0f} % of a core", "", None),
        ("engine in-process verdict rate (no kernel)", f"{handled:,.0f} pps", "(reference)", None),
        ("bulk TCP, no censor (median)", f"{bare:,.0f} Mbit/s", "", None),
        ("bulk TCP, engine on, flow marked (median)", f"{engine_on:,.0f} Mbit/s", "", None),
        ("  ratio engine on / no censor", f"{ratio:.2f}", ">= 0.90", ratio >= 0.9),
        (f"engine RSS with {in_table:,} flows", f"{rss_after:.1f} MiB",
         f"(+{rss_after - rss_before:.1f} MiB for the flows)", None),
    ]  # fmt: skip
    for name, value, target, ok in rows:
        verdict = "" if ok is None else ("met" if ok else "MISSED")
        print(f"{name:<48} {value:>22}  {target:<28} {verdict}")
    print(json.dumps({"queued_pps": round(pps), "engine_in_process_pps": round(handled),
                      "bulk_bare_mbit": round(bare), "bulk_engine_mbit": round(engine_on),
                      "ratio": round(ratio, 3), "rss_mib": round(rss_after, 1),
                      "flows": in_table, "engine_cpu_pct": round(cpu)}))  # fmt: skip


if __name__ == "__main__":
    main()
