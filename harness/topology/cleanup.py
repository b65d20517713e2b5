"""`gatecrash clean`: reap what a crashed or killed run left behind.

A run is alive while its marker in /run/gatecrash names a live pid; anything of a dead run
(namespaces with the gc- prefix, the processes in them, their /etc/netns files, markers) is
removed. Nothing outside the run's own namespaces is ever touched.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.topology.netns import (
    NETNS_ETC,
    NS_PREFIX,
    _ip_batch,
    kill_namespace_processes,
    list_namespaces,
)

STATE_DIR = Path("/run/gatecrash")


@dataclass
class CleanReport:
    namespaces: list[str] = field(default_factory=list)
    processes: int = 0
    files: list[str] = field(default_factory=list)
    skipped_live_runs: list[str] = field(default_factory=list)
    docker: list[str] = field(default_factory=list)  # containers, networks, volumes removed
    docker_unreachable: str | None = None


def _run_of(ns: str) -> str:
    return ns[len(NS_PREFIX) :].split("-", 1)[0]


def live_runs() -> set[str]:
    live = set()
    if not STATE_DIR.is_dir():
        return live
    for marker in STATE_DIR.glob("*.json"):
        try:
            pid = int(json.loads(marker.read_text())["pid"])
            os.kill(pid, 0)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            continue
        live.add(marker.stem)
    return live


def clean(force: bool = False) -> CleanReport:
    report = CleanReport()
    live = set() if force else live_runs()
    ours = [ns for ns in list_namespaces() if ns.startswith(NS_PREFIX)]
    doomed = [ns for ns in ours if _run_of(ns) not in live]
    report.skipped_live_runs = sorted({_run_of(ns) for ns in ours} & live)
    report.processes = kill_namespace_processes(doomed) if doomed else 0
    if doomed:
        _ip_batch([f"netns del {ns}" for ns in doomed])
        report.namespaces = doomed
    if NETNS_ETC.is_dir():
        for etc in NETNS_ETC.glob(f"{NS_PREFIX}*"):
            if _run_of(etc.name) not in live:
                shutil.rmtree(etc, ignore_errors=True)
                report.files.append(str(etc))
    clean_docker(report, live, force)
    if STATE_DIR.is_dir():
        for marker in STATE_DIR.glob("*.json"):
            if marker.stem not in live:
                marker.unlink(missing_ok=True)
                report.files.append(str(marker))
    return report


def clean_docker(report: CleanReport, live: set[str], force: bool) -> None:
    """Containers, networks and volumes labelled by a dead run (docker backend). An object
    is alive while its run's marker is, or while the process that made it (pid label) runs:
    topologies built outside a run (tests, benchmarks) have no marker. Objects without
    gatecrash's run label are never looked at."""
    from harness.images import DockerUnavailable, connect
    from harness.topology.docker import PID_LABEL, RUN_LABEL, remove_labelled

    try:
        client = connect(timeout=10)
    except DockerUnavailable as exc:
        report.docker_unreachable = str(exc)
        return
    objects = [
        *client.containers.list(all=True, filters={"label": RUN_LABEL}),
        *client.networks.list(filters={"label": RUN_LABEL}),
        *client.volumes.list(filters={"label": RUN_LABEL}),
    ]
    runs: dict[str, bool] = {}
    for obj in objects:
        labels = obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}
        run = labels.get(RUN_LABEL)
        if run is None:
            continue
        alive = not force and (run in live or _pid_alive(labels.get(PID_LABEL, "")))
        runs[run] = runs.get(run, False) or alive
    for run, alive in sorted(runs.items()):
        if alive:
            report.skipped_live_runs.append(run)
        else:
            report.docker += remove_labelled(client, {RUN_LABEL: run})
    report.skipped_live_runs = sorted(set(report.skipped_live_runs))


def _pid_alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True
