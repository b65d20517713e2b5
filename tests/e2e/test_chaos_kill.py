"""SIGKILL matrix: `gatecrash run` killed at each phase of a trial, then `gatecrash clean`.

The run (the CLI, one cell, one trial of a 1 s call, a censor with a DPI engine and a tool
with processes on both sides) is killed with SIGKILL (the process alone, as the OOM killer
or `kill -9` would) the moment a phase is seen to start, from what the phase leaves on the
machine: the run's namespaces, Docker's events for its containers, a program's log file, the
call's ACK in the caller's log, the trial's line in results.jsonl. What it left is counted,
`gatecrash clean` runs, and nothing of the run may remain: namespaces, veths, processes,
containers, networks, volumes, /etc/netns files and state files; the host's links, routes
and firewall are as before.

The phases run one after the other: `clean` removes every dead run's objects, so a run
killed in a parallel thread would be cleaned before its own count.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.topology.docker import PID_LABEL, RUN_LABEL
from harness.topology.namespaces import NETNS_ETC, list_namespaces
from harness.topology.state import OWNERS_DIR, STATE_DIR
from tests.conftest import REPO, host_network_state

pytestmark = pytest.mark.e2e

SCENARIO = """
name: chaos
trials: 1
call_seconds: 1
apps: [sip]
tools: [shadowsocks]
censors:
  sni: [{type: sni_filter, names: [blocked.example]}]
"""
GATECRASH = str(Path(sys.executable).parent / "gatecrash")
PHASE_TIMEOUT_S = 60


class Run:
    """One `gatecrash run` of the scenario, and what it leaves on the machine."""

    def __init__(self, tmp: Path, backend: str) -> None:
        self.out, self.backend = tmp / "out", backend
        tmp.mkdir(parents=True, exist_ok=True)
        scenario = tmp / "chaos.yaml"
        scenario.write_text(SCENARIO)
        self.trial = self.out / "trials" / "sni" / "shadowsocks" / "sip" / "0"
        self.events: list[str] = []  # docker events of its containers, as they come
        self.proc = subprocess.Popen(
            [GATECRASH, "run", str(scenario), "--out", str(self.out), "--backend", backend],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            start_new_session=True,
        )  # fmt: skip
        self.run_id = ""
        self.seen_pids: set[int] = set()
        self.bridges: set[str] = set()

    # -- phases: each returns True once the phase has started ------------------------------
    def id_known(self) -> bool:
        """The run id, from the run's marker (or, once it is gone, its trial record)."""
        if self.run_id:
            return True
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.run_id = json.loads((self.out / "results.jsonl").read_text().split("\n")[0])[
                "run_id"
            ]
        for marker in STATE_DIR.glob("*.json"):
            try:
                if json.loads(marker.read_text())["pid"] == self.proc.pid:
                    self.run_id = marker.stem
            except (OSError, ValueError, KeyError):
                continue
        return bool(self.run_id)

    def namespaces_made(self) -> bool:
        return self.id_known() and bool(self.namespaces())

    def log_exists(self, name: str) -> Callable[[], bool]:
        return lambda: (self.trial / "logs" / name).exists()

    def call_answered(self) -> bool:
        try:
            return "-> ACK" in (self.trial / "logs" / "client.caller.err").read_text()
        except OSError:
            return False

    def recorded(self) -> bool:
        try:
            return (self.out / "results.jsonl").read_text().endswith("\n")
        except OSError:
            return False

    def docker_event(self, action: str) -> Callable[[], bool]:
        return lambda: self.id_known() and action in self.events

    # -- kill, and count -------------------------------------------------------------------
    def kill_when(self, started: Callable[[], bool]) -> None:
        deadline = time.monotonic() + PHASE_TIMEOUT_S
        while not (self.id_known() and started()):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                err = self.proc.communicate()[1].decode()[-2000:]
                pytest.fail(f"the phase was never seen (run exit {self.proc.returncode}):\n{err}")
            time.sleep(0.005)
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        assert self.id_known(), "the run's marker names its run id (and stays after SIGKILL)"
        # Its children in its process group (an `ip -batch`, a `docker` call) finish alone.
        deadline = time.monotonic() + 10
        while _group_members(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)

    def namespaces(self) -> list[str]:
        return [ns for ns in list_namespaces() if ns.startswith(f"gc-{self.run_id}-")]

    def count(self, client) -> dict[str, int]:
        """What of this run is on the machine now."""
        namespaces = self.namespaces()
        veths = sum(
            len(_lines("ip", "-n", ns, "-o", "link", "show", "type", "veth")) for ns in namespaces
        )
        containers = networks = volumes = 0
        container_ids: set[str] = set()
        if client is not None:
            filters = {"label": f"{RUN_LABEL}={self.run_id}"}
            found = client.containers.list(all=True, filters=filters, ignore_removed=True)
            container_ids = {c.id for c in found}
            nets = client.networks.list(filters=filters)
            self.bridges |= {f"br-{n.id[:12]}" for n in nets}
            containers, networks = len(found), len(nets)
            volumes = len(client.volumes.list(filters=filters))
            veths += sum(len(_lines("ip", "-o", "link", "show", "master", b)) for b in self.bridges)
        self.seen_pids |= self._pids(namespaces, container_ids)
        files = [
            *NETNS_ETC.glob(f"gc-{self.run_id}-*"),
            *STATE_DIR.glob(f"{self.run_id}.json"),
            *OWNERS_DIR.glob(f"gc-{self.run_id}-*.pid"),
        ]
        return {
            "namespaces": len(namespaces),
            "veths": veths,
            "processes": sum(1 for pid in self.seen_pids if _alive(pid)),
            "containers": containers,
            "networks": networks,
            "volumes": volumes,
            "files": len(files),
        }

    def _pids(self, namespaces: list[str], container_ids: set[str]) -> set[int]:
        """Processes of the run: in its namespaces or containers, or naming its objects or
        its output directory (the Docker backend's exec relays, programs' arguments)."""
        pids = {int(p) for ns in namespaces for p in _lines("ip", "netns", "pids", ns)}
        marks = [f"gc-{self.run_id}-", str(self.out)]
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cgroup = (proc / "cgroup").read_text() if container_ids else ""
            except OSError:
                continue
            if any(m in cmdline for m in marks) or any(c in cgroup for c in container_ids):
                pids.add(int(proc.name))
        return pids


def _lines(*argv: str) -> list[str]:
    out = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    return [line for line in out.splitlines() if line.strip()]


def _group_members(pgid: int) -> list[int]:
    members = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(stat[2]) == pgid and stat[0] != "Z":
                members.append(int(proc.name))
    return members


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):
        return False


def _watch_docker_events(client, run: Run) -> threading.Thread:
    """Docker's create/kill/destroy events of the run's containers, into run.events."""
    stream = client.events(
        decode=True, filters={"type": "container", "label": f"{PID_LABEL}={run.proc.pid}"}
    )

    def follow() -> None:
        try:
            for event in stream:
                run.events.append(event.get("Action", ""))
        except Exception:  # the stream closed under us: the run is over
            pass

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    run.close_events = stream.close  # type: ignore[attr-defined]
    return thread


PHASES = {
    "netns": ["topology up", "servers starting", "censor installing", "tool starting",
              "mid-call", "scoring"],
    "docker": ["container creation", "servers starting", "censor installing", "tool starting",
               "mid-call", "scoring", "teardown"],
}  # fmt: skip


def _phases(run: Run, backend: str) -> dict[str, Callable[[], bool]]:
    """Each phase's start, as seen from outside the run."""
    common = {
        "servers starting": run.log_exists("voip.kamailio.out"),
        "censor installing": run.log_exists("censor.engine.out"),
        "tool starting": run.log_exists("proxy.ss-server.out"),
        "mid-call": run.call_answered,
        "scoring": run.recorded,
    }
    if backend == "netns":
        return {"topology up": run.namespaces_made, **common}
    return {
        "container creation": run.docker_event("create"),
        **common,
        "teardown": run.docker_event("kill"),
    }


def _clean() -> subprocess.CompletedProcess[str]:
    return subprocess.run([GATECRASH, "clean"], cwd=REPO, capture_output=True, text=True,
                          timeout=180)  # fmt: skip


def _host_state_settles(before: dict[str, str], timeout: float = 15.0) -> dict[str, str]:
    """The host's state, once equal to `before` (other programs' Docker networks come and
    go on the machine; their objects are left out, but a link is briefly unattached)."""
    deadline = time.monotonic() + timeout
    while (now := host_network_state()) != before and time.monotonic() < deadline:
        time.sleep(0.5)
    return now


@pytest.mark.parametrize("backend", ["netns", "docker"])
def test_sigkill_at_every_phase_then_clean_leaves_nothing(backend, tmp_path) -> None:
    assert os.geteuid() == 0, "e2e tests build namespaces and containers: run as root"
    client = None
    if backend == "docker":
        from harness.images import connect, ensure_images

        ensure_images()
        client = connect()
    before = host_network_state()
    rows: list[tuple[str, dict[str, int], dict[str, int], float]] = []
    for n, phase in enumerate(PHASES[backend]):
        started = time.monotonic()
        run = Run(tmp_path / str(n), backend)
        if client is not None:
            _watch_docker_events(client, run)
        try:
            run.kill_when(_phases(run, backend)[phase])
        finally:
            if client is not None:
                run.close_events()  # type: ignore[attr-defined]
        left = run.count(client)
        done = _clean()
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        after = run.count(client)
        rows.append((phase, left, after, time.monotonic() - started))
    print(f"\nSIGKILL matrix ({backend}): objects left after kill -> after clean")
    for phase, left, after, took in rows:
        cells = ", ".join(f"{k} {left[k]}->{after[k]}" for k in left)
        print(f"  {phase:20} {cells}  ({took:.1f} s)")
    for phase, _, after, _ in rows:
        assert set(after.values()) == {0}, (phase, after)
    assert any(sum(left.values()) > 1 for _, left, _, _ in rows), "the kills left something"
    assert _host_state_settles(before) == before
