"""Benchmark (not a test): topology up+down time and harness overhead per trial.

    .venv/bin/python benchmarks/topology_and_overhead.py [--iterations 20] [--call-seconds 5]

Prints, side by side in one run: the standard topology's up, down and up+down time
(target up+down <= 0.3 s), and the harness overhead per SIP trial
(wall time - call length) / call length (target <= 5 % for a 5 s call), with its parts.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.topology.addressing import AddressPool
from harness.topology.netns import NetnsTopology


def bench_topology(iterations: int) -> None:
    pool = AddressPool()
    ups, downs, totals = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(iterations):
            topo = NetnsTopology("bench", i, pool.acquire(), Path(tmp))
            start = time.monotonic()
            with topo:
                pass
            totals.append(time.monotonic() - start)
            ups.append(topo.up_s)
            downs.append(topo.down_s)
    print(f"topology (netns, {len(NetnsTopology('x', 0, pool.acquire(), Path('.')).namespaces)}"
          f" hosts + switch), {iterations} iterations:")  # fmt: skip
    for name, values in (("up", ups), ("down", downs), ("up+down", totals)):
        print(
            f"  {name:8s} median {statistics.median(values) * 1000:7.1f} ms   "
            f"max {max(values) * 1000:7.1f} ms"
        )
    ratio = statistics.median(totals) / 0.3
    print(f"  up+down / target 0.3 s = {ratio:.2f} ({'met' if ratio <= 1 else 'MISSED'})")


def bench_overhead(call_seconds: float, trials: int) -> None:
    scenario = parse_scenario(
        f"""
name: bench-overhead
trials: {trials}
call_seconds: {call_seconds}
apps: [sip]
tools: [direct]
censors: {{open: []}}
"""
    )
    with tempfile.TemporaryDirectory() as tmp:
        results = Runner(scenario, Path(tmp)).run()
    print(f"\nharness overhead per SIP trial, call {call_seconds:.1f} s, {trials} trials:")
    overheads = []
    for r in results:
        overhead = (r.wall_s - call_seconds) / call_seconds
        overheads.append(overhead)
        setup = r.call.setup_ms if r.call else None
        print(
            f"  trial {r.trial}: outcome {r.outcome}, wall {r.wall_s:.3f} s, "
            f"setup {setup} ms, overhead {overhead:.1%}"
        )
        print("    phases ms: " + ", ".join(f"{k} {v:.0f}" for k, v in r.phases_ms.items()))
    med = statistics.median(overheads)
    print(f"  median overhead {med:.1%} / target 5% = {med / 0.05:.2f} "
          f"({'met' if med <= 0.05 else 'MISSED'})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--call-seconds", type=float, default=5.0)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    bench_topology(args.iterations)
    bench_overhead(args.call_seconds, args.trials)


if __name__ == "__main__":
    main()
