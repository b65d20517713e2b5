"""Benchmark (not a test): does a long run leak? Many short trials, resources counted.

    .venv/bin/python benchmarks/soak.py [--trials 300] [--every 50] [--out DIR]

Runs a scenario built here (censors `open` and a UDP 5060 `port_block`, tool `direct`, apps
`xmpp` and `sip` with 1 s calls) on the netns backend with `Runner` in this process, one
trial at a time, and counts before the run, every `--every` recorded attempts and after it:
the runner's open fds, threads and RSS, this run's network namespaces and /etc/netns
directories, leftover processes (the runner's children, anything inside this run's
namespaces, anything whose command line names the run's directory) and conntrack entries
(the host namespace's `conntrack -C`, and the kernel's nf_conntrack slab, which counts
every namespace's entries, other users' included). Targets: no leaked object, RSS growth
< 20 MiB.
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from harness.results import TrialResult
from harness.runner import Runner
from harness.scenario import Scenario, parse_scenario
from harness.topology.namespaces import NETNS_ETC, NS_PREFIX, list_namespaces

CELLS = 4  # 2 censors x 1 tool x 2 apps
RSS_TARGET_MIB = 20.0
MIB = 1024 * 1024


def soak_scenario(trials_per_cell: int, call_seconds: float) -> Scenario:
    """Fast cells: a working one per app and a SIP call the censor blocks (short timeout)."""
    return parse_scenario(
        f"""
name: soak
trials: {trials_per_cell}
call_seconds: {call_seconds}
apps: [xmpp, sip]
tools: [direct]
sip: {{setup_timeout_s: 2}}
xmpp: {{messages: 5, interval_ms: 20, timeout_s: 5}}
censors:
  open: []
  sip-blocked: [{{type: port_block, proto: udp, ports: [5060]}}]
"""
    )


@dataclass
class Sample:
    """One count of everything a trial could leave behind, at `attempts` recorded."""

    attempts: int
    elapsed_s: float
    fds: int
    threads: int
    rss_mib: float
    namespaces: int
    netns_etc: int
    processes: int
    conntrack_host: int | None
    conntrack_slab: int | None


def run_namespaces(run_id: str) -> list[str]:
    return [n for n in list_namespaces() if n.startswith(f"{NS_PREFIX}{run_id}-")]


def netns_etc_dirs(run_id: str) -> int:
    if not NETNS_ETC.is_dir():
        return 0
    return sum(1 for p in NETNS_ETC.iterdir() if p.name.startswith(f"{NS_PREFIX}{run_id}-"))


def namespace_pids(namespaces: list[str]) -> set[int]:
    pids: set[int] = set()
    for name in namespaces:
        proc = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        pids.update(int(p) for p in proc.stdout.split())
    return pids


def leftover_pids(run_id: str, out_dir: Path) -> set[int]:
    """Processes a finished trial should not have left: children (even orphaned ones are
    found by their command line, which names a trial directory) and namespace members."""
    me = psutil.Process()
    pids = {child.pid for child in me.children(recursive=True)}
    pids |= namespace_pids(run_namespaces(run_id))
    marker = str(out_dir)
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.pid != me.pid and any(marker in arg for arg in cmdline):
            pids.add(proc.pid)
    return pids


def conntrack_host() -> int | None:
    """Entries in the host's own namespace (the harness never makes any there)."""
    if shutil.which("conntrack"):
        proc = subprocess.run(["conntrack", "-C"], capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip().isdigit():
            return int(proc.stdout)
    path = Path("/proc/sys/net/netfilter/nf_conntrack_count")
    return int(path.read_text()) if path.exists() else None


def conntrack_slab() -> int | None:
    """Live nf_conntrack objects in all namespaces: entries of dead namespaces show here."""
    try:
        lines = Path("/proc/slabinfo").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if fields and fields[0] == "nf_conntrack":
            return int(fields[1])
    return None


def sample(attempts: int, started: float, run_id: str, out_dir: Path) -> Sample:
    me = psutil.Process()
    return Sample(
        attempts=attempts,
        elapsed_s=round(time.monotonic() - started, 1),
        fds=me.num_fds(),
        threads=threading.active_count(),
        rss_mib=round(me.memory_info().rss / MIB, 1),
        namespaces=len(run_namespaces(run_id)),
        netns_etc=netns_etc_dirs(run_id),
        processes=len(leftover_pids(run_id, out_dir)),
        conntrack_host=conntrack_host(),
        conntrack_slab=conntrack_slab(),
    )


# (field, label, unit, leak target: growth that counts as a leak; None = informative)
COLUMNS: list[tuple[str, str, str, float | None]] = [
    ("fds", "open fds", "fds", 0),
    ("threads", "threads", "threads", 0),
    ("rss_mib", "RSS", "MiB", RSS_TARGET_MIB),
    ("namespaces", "run's netns", "netns", 0),
    ("netns_etc", "/etc/netns dirs", "dirs", 0),
    ("processes", "leftover processes", "procs", 0),
    ("conntrack_host", "conntrack (host ns)", "entries", None),
    ("conntrack_slab", "nf_conntrack slab", "objects", None),
]


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


def growth(samples: list[Sample], key: str, target: float | None) -> tuple[str, str, str]:
    """(after - before, after - first checkpoint (warmed up), verdict against target)."""
    first, after = getattr(samples[0], key), getattr(samples[-1], key)
    warm = getattr(samples[1] if len(samples) > 2 else samples[0], key)
    if first is None or after is None:
        return "-", "-", "n/a"
    total, steady = round(after - first, 1), round(after - warm, 1)
    if target is None:
        verdict = "informative: host-wide, other users' traffic too"
    elif target == 0:
        verdict = "met (0)" if total <= 0 else "MISSED (0)"
    else:
        verdict = f"met (< {target:g})" if total < target else f"MISSED (< {target:g})"
    return f"{total:+g}", f"{steady:+g}", verdict


def print_table(samples: list[Sample]) -> None:
    """One row per resource: its count at each checkpoint, then its growth."""
    heads = ["before", *(f"@{s.attempts}" for s in samples[1:-1]), f"after {samples[-1].attempts}"]
    print(f"{'resource (unit)':32s}" + "".join(f"{h:>10s}" for h in heads)
          + f"{'growth':>9s}{'warm':>8s}  target")  # fmt: skip
    for key, label, unit, target in COLUMNS:
        counts = "".join(f"{_cell(getattr(s, key)):>10s}" for s in samples)
        total, steady, verdict = growth(samples, key, target)
        print(f"{label + ' (' + unit + ')':32s}{counts}{total:>9s}{steady:>8s}  {verdict}")
    warm_from = samples[1].attempts if len(samples) > 2 else 0
    times = ", ".join(f"@{s.attempts} {s.elapsed_s:g} s" for s in samples[1:])
    print(f"growth = after - before; warm = after - @{warm_from}; elapsed: {times}")


def progress_line(s: Sample) -> str:
    return (f"  @{s.attempts:<4d} {s.elapsed_s:7.1f} s  fds {s.fds}  threads {s.threads}  "
            f"rss {s.rss_mib} MiB  netns {s.namespaces}  procs {s.processes}  "
            f"conntrack {s.conntrack_host}/{s.conntrack_slab}")  # fmt: skip


class Probe:
    """Counts for one run: before it, from the Runner's on_trial hook every `every`
    attempts (one trial at a time, so each count falls between two trials) and after."""

    def __init__(self, run_id: str, out_dir: Path, every: int) -> None:
        self.run_id, self.out_dir, self.every = run_id, out_dir, every
        self.started = time.monotonic()
        self.samples: list[Sample] = []
        self.outcomes: collections.Counter[tuple[str, str, str]] = collections.Counter()

    @property
    def attempts(self) -> int:
        return sum(self.outcomes.values())

    def count(self) -> Sample:
        taken = sample(self.attempts, self.started, self.run_id, self.out_dir)
        self.samples.append(taken)
        return taken

    def on_trial(self, result: TrialResult) -> None:
        self.outcomes[(result.censor, result.app, result.outcome)] += 1
        if self.attempts % self.every == 0:
            print(progress_line(self.count()), flush=True)


def soak(trials: int, every: int, call_seconds: float, out_dir: Path) -> list[Sample]:
    per_cell = max(1, math.ceil(trials / CELLS))
    probe = Probe(secrets.token_hex(3), out_dir, every)
    runner = Runner(
        soak_scenario(per_cell, call_seconds),
        out_dir,
        backend="netns",
        run_id=probe.run_id,
        on_trial=probe.on_trial,
        jobs=1,  # counts fall between trials, never during one
    )
    load = os.getloadavg()[0]
    print(f"soak: {per_cell * CELLS} trials ({per_cell} per cell), run {probe.run_id}, "
          f"load average {load:.2f} on {os.cpu_count()} cores", flush=True)  # fmt: skip
    print(progress_line(probe.count()), flush=True)
    runner.run()
    time.sleep(1.0)  # the last trial's namespaces were just deleted: let the kernel catch up
    if probe.samples[-1].attempts != probe.attempts:
        probe.count()
    else:
        probe.samples[-1] = sample(probe.attempts, probe.started, probe.run_id, out_dir)
    print_outcomes(probe.outcomes, time.monotonic() - probe.started)
    print_table(probe.samples)
    (out_dir / "soak.json").write_text(json.dumps([asdict(s) for s in probe.samples], indent=2))
    return probe.samples


def print_outcomes(outcomes: collections.Counter, wall_s: float) -> None:
    attempts = sum(outcomes.values())
    print(f"\n{attempts} attempts in {wall_s:.0f} s ({wall_s / max(attempts, 1):.2f} s each), "
          f"load average {os.getloadavg()[0]:.2f}:")  # fmt: skip
    for (censor, app, outcome), count in sorted(outcomes.items()):
        print(f"  {censor:12s} {app:5s} {outcome:20s} {count}")
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300, help="trials in all (4 cells)")
    parser.add_argument("--every", type=int, default=50, help="count every N attempts")
    parser.add_argument("--call-seconds", type=float, default=1.0)
    parser.add_argument("--out", type=Path, help="keep the run here (default: a temp dir)")
    args = parser.parse_args()
    if args.out:
        soak(args.trials, args.every, args.call_seconds, args.out)
        return
    with tempfile.TemporaryDirectory(prefix="gatecrash-soak-") as tmp:
        soak(args.trials, args.every, args.call_seconds, Path(tmp))


if __name__ == "__main__":
    main()
