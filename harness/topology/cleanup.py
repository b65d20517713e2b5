"""`gatecrash clean`: reap what a crashed or killed run left behind.

An object is alive while its run's marker in /run/gatecrash names a live pid, or while the
process that built it does (a netns topology's owner file, a Docker object's pid label:
topologies built outside a run, by tests and benchmarks, have no marker). Everything else
of gatecrash's is removed: namespaces with the gc- prefix and the processes in them, their
/etc/netns files, containers, networks and volumes with gatecrash's run label, markers.
Each object is removed on its own: one that will not go is reported (reason and a command
that would remove it) and the rest is still removed. Nothing outside the run's own
namespaces, and no Docker object without gatecrash's run label, is ever touched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from harness.topology.leftovers import Leftover, one_line
from harness.topology.namespaces import NETNS_ETC, NS_PREFIX, list_namespaces
from harness.topology.netns_remove import remove_etc, remove_namespaces
from harness.topology.state import (
    OWNERS_DIR,
    STATE_DIR,
    live_runs,
    owner_alive,
    pid_alive,
)

__all__ = ["STATE_DIR", "CleanReport", "clean", "clean_docker", "live_runs"]


@dataclass
class CleanReport:
    namespaces: list[str] = field(default_factory=list)
    processes: int = 0
    files: list[str] = field(default_factory=list)
    skipped_live_runs: list[str] = field(default_factory=list)
    docker: list[str] = field(default_factory=list)  # containers, networks, volumes removed
    docker_unreachable: str | None = None
    leftovers: list[Leftover] = field(default_factory=list)  # what could not be removed

    @property
    def complete(self) -> bool:
        """Everything found was removed."""
        return not self.leftovers


def _run_of(name: str) -> str:
    return name[len(NS_PREFIX) :].split("-", 1)[0]


def _prefix_of(name: str) -> str:
    """gc-RUN-SLOT of gc-RUN-SLOT-ROLE (roles have no dash)."""
    return name.rsplit("-", 1)[0]


def clean(force: bool = False) -> CleanReport:
    report = CleanReport()
    live = set() if force else live_runs()

    def dead(name: str) -> bool:
        return force or (_run_of(name) not in live and not owner_alive(_prefix_of(name)))

    skipped: set[str] = set()
    seen: set[str] = set()
    for _ in range(2):  # a second look: a killed run's last `ip netns add` may land late
        ours = [ns for ns in list_namespaces() if ns.startswith(NS_PREFIX) and ns not in seen]
        skipped |= {_run_of(ns) for ns in ours if not dead(ns)}
        doomed = [ns for ns in ours if dead(ns)]
        seen.update(ours)
        if not doomed:
            break
        removal = remove_namespaces(doomed)
        report.namespaces += removal.namespaces
        report.processes += removal.processes
        report.files += removal.files
        report.leftovers += removal.leftovers
    if NETNS_ETC.is_dir():
        for etc in sorted(NETNS_ETC.glob(f"{NS_PREFIX}*")):
            if dead(etc.name):
                removed, leftovers = remove_etc(etc.name)
                report.files += removed
                report.leftovers += leftovers
    report.skipped_live_runs = sorted(skipped)
    clean_docker(report, live, force)
    _remove_files(report, STATE_DIR.glob("*.json"), lambda f: force or f.stem not in live)
    _remove_files(report, OWNERS_DIR.glob("*.pid"), lambda f: force or not owner_alive(f.name[:-4]))
    return report


def _remove_files(
    report: CleanReport, files: Iterable[Path], doomed: Callable[[Path], bool]
) -> None:
    """Markers and owner files of what is no longer alive."""
    for path in sorted(files):
        if not doomed(path):
            continue
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            report.leftovers.append(Leftover("file", str(path), one_line(str(exc)), f"rm {path}"))
        else:
            report.files.append(str(path))


def clean_docker(report: CleanReport, live: set[str], force: bool) -> None:
    """Containers, networks and volumes labelled by a dead run (docker backend). An object
    is alive while its run's marker is, or while the process that made it (pid label) runs.
    Objects without gatecrash's run label are never looked at. An unreachable daemon is
    noted in `docker_unreachable` (nothing can be known, nor removed, there)."""
    from harness.images import DockerUnavailable, connect
    from harness.topology.docker_remove import docker_errors

    try:
        client = connect(timeout=10)
    except DockerUnavailable as exc:
        report.docker_unreachable = str(exc)
        return
    seen: set[str] = set()
    for _ in range(2):  # a second look: a killed run's last create may land late
        try:
            runs = _docker_runs(client, live, force)
        except docker_errors() as exc:
            report.leftovers.append(
                Leftover("docker", "objects", f"cannot list: {one_line(str(exc))}", "")
            )
            return
        todo = {run: ids for run, (alive, ids) in runs.items() if not alive and ids - seen}
        report.skipped_live_runs = sorted(
            {*report.skipped_live_runs, *(run for run, (alive, _) in runs.items() if alive)}
        )
        if not todo:
            return
        for run, ids in sorted(todo.items()):
            _remove_run(client, report, run)
            seen |= ids


def _docker_runs(client, live: set[str], force: bool) -> dict[str, tuple[bool, set[str]]]:
    """run -> (alive, ids of its objects), for every object with gatecrash's run label."""
    from harness.topology.docker_labels import PID_LABEL, RUN_LABEL

    objects = [
        *client.containers.list(all=True, filters={"label": RUN_LABEL}, ignore_removed=True),
        *client.networks.list(filters={"label": RUN_LABEL}),
        *client.volumes.list(filters={"label": RUN_LABEL}),
    ]
    runs: dict[str, tuple[bool, set[str]]] = {}
    for obj in objects:
        labels = obj.attrs.get("Labels") or obj.attrs.get("Config", {}).get("Labels") or {}
        run = labels.get(RUN_LABEL)
        if run is None:
            continue
        alive = not force and (run in live or pid_alive(labels.get(PID_LABEL, "")))
        was_alive, ids = runs.get(run, (False, set()))
        runs[run] = (was_alive or alive, ids | {obj.id})
    return runs


def _remove_run(client, report: CleanReport, run: str) -> None:
    from harness.topology.docker_labels import RUN_LABEL
    from harness.topology.docker_remove import remove_labelled

    removal = remove_labelled(client, {RUN_LABEL: run})
    report.docker += removal.removed
    gone = set(removal.removed)  # a second look may remove what the first could not
    known = {(x.kind, x.name) for x in report.leftovers if x.name not in gone}
    report.leftovers = [x for x in report.leftovers if x.name not in gone]
    report.leftovers += [x for x in removal.leftovers if (x.kind, x.name) not in known]
