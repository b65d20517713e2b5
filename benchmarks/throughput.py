"""Benchmark (not a test): trials per minute at --jobs 1 and at the default, side by side.

    .venv/bin/python benchmarks/throughput.py [--scenario scenarios/quickstart.yaml]
        [--jobs N] [--baseline-jobs 1] [--trials N] [--call-seconds S]

Runs the same scenario twice in one process on the netns backend, first `--baseline-jobs`
trials at a time (default 1), then `--jobs` side by side (default:
harness.runner.default_jobs()), and prints the
wall time, trials per minute and their ratio (target >= 3x on 2 cores), then per cell the
two runs' verdicts and the differences of median MOS, loss, jitter and setup time: parallel
trials must not disturb each other's measurements (target: no verdict changes, MOS within
0.1). Needs root.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from harness.registry import app_kinds
from harness.runner import Runner, default_jobs
from harness.scenario import Scenario, load_scenario
from harness.scoring.verdict import CellScore, score_cells

METRICS = (  # (CellScore field, label, unit)
    ("mos_median", "MOS", ""),
    ("loss_pct_median", "loss", "%"),
    ("jitter_ms_median", "jitter", "ms"),
    ("setup_ms_p50", "setup p50", "ms"),
)


def timed_run(scenario: Scenario, jobs: int, out: Path) -> tuple[float, list[CellScore]]:
    start = time.monotonic()
    results = Runner(scenario, out, jobs=jobs).run()
    wall = time.monotonic() - start
    return wall, score_cells(results, scenario.thresholds, app_kinds(scenario.apps))


def _diff(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{b - a:+.3g}"


def print_cells(serial: list[CellScore], parallel: list[CellScore]) -> int:
    """Per cell: verdicts and metric differences (parallel - serial); the verdict changes."""
    by_cell = {(c.censor, c.tool, c.app): c for c in parallel}
    changed = 0
    print(f"{'cell':38s} {'verdict baseline':>20s} {'verdict jobs=N':>20s}  differences")
    for one in serial:
        key = (one.censor, one.tool, one.app)
        many = by_cell[key]
        changed += one.verdict != many.verdict
        diffs = ", ".join(
            f"{label} {_diff(getattr(one, field), getattr(many, field))}{unit}"
            for field, label, unit in METRICS
            if getattr(one, field) is not None or getattr(many, field) is not None
        )
        mark = "  <- verdict changed" if one.verdict != many.verdict else ""
        print(f"{' / '.join(key):38s} {one.verdict:>20s} {many.verdict:>20s}  {diffs}{mark}")
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="scenarios/quickstart.yaml")
    parser.add_argument("--jobs", type=int, default=default_jobs())
    parser.add_argument("--baseline-jobs", type=int, default=1)
    parser.add_argument("--trials", type=int)
    parser.add_argument("--call-seconds", type=float)
    args = parser.parse_args()
    scenario = load_scenario(args.scenario)
    if args.trials:
        scenario.trials = args.trials
    if args.call_seconds:
        scenario.call_seconds = args.call_seconds
    n = len(scenario.cells()) * scenario.trials
    print(
        f"{scenario.name}: {n} trials, {scenario.call_seconds:g} s calls, "
        f"{os.cpu_count()} cores, load average before {os.getloadavg()[0]:.2f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        serial_s, serial = timed_run(scenario, args.baseline_jobs, Path(tmp) / "serial")
        parallel_s, parallel = timed_run(scenario, args.jobs, Path(tmp) / "parallel")
    rate_1, rate_n = n / serial_s * 60, n / parallel_s * 60
    print(f"jobs={args.baseline_jobs}:  {serial_s:7.1f} s  {rate_1:6.1f} trials/min")
    print(f"jobs={args.jobs}:  {parallel_s:7.1f} s  {rate_n:6.1f} trials/min")
    print(f"ratio: {rate_n / rate_1:.2f}x (target >= 3x on 2 cores)")
    changed = print_cells(serial, parallel)
    print(f"verdict changes: {changed} of {len(serial)} cells (target 0)")


if __name__ == "__main__":
    main()
