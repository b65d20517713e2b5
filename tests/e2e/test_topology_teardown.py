"""netns tear-down that does not cascade: many trial attempts alive at once under names of
their own, an object that will not go reported (not raised) and left for `gatecrash clean`,
and a topology that fails part-way removes what it made."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from harness.topology.addressing import AddressPool
from harness.topology.namespaces import NETNS_ETC, list_namespaces
from harness.topology.netns import NetnsTopology
from tests.conftest import REPO

FREEZER = Path("/sys/fs/cgroup/freezer")

pytestmark = pytest.mark.e2e


def _run_id(tag: str) -> str:
    return f"{tag}{os.getpid() % 100000}"


def _ours(prefix: str) -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(prefix + "-")]


def _clean() -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_attempts_side_by_side_from_threads_keep_to_their_own_names(tmp_path: Path) -> None:
    """Four attempts of one run (slots up to 99999) built, used and removed at once from
    four threads: each has its own namespaces and /etc/netns files, reaches only its own
    servers, and nothing of any of them stays."""
    pool, run_id = AddressPool(), _run_id("tpar")
    slots = [0, 1, 99998, 99999]
    topos = [NetnsTopology(run_id, s, pool.acquire(), tmp_path / str(s)) for s in slots]
    names = [set(t.namespaces.values()) | {t.switch} for t in topos]
    assert sum(map(len, names)) == len(set().union(*names)) == 9 * len(slots)
    assert max(len(ns) for ns in set().union(*names)) <= 32

    def use(topo: NetnsTopology) -> list[str]:
        with topo:
            assert {p.name for p in NETNS_ETC.glob(f"{topo.prefix}-*")} == set(
                topo.namespaces.values()
            )
            topo["client"].run(["ping", "-c", "1", "-W", "2", topo.addr("voip")])
            resolv = (NETNS_ETC / topo.namespaces["client"] / "resolv.conf").read_text()
            assert resolv.startswith(f"nameserver {topo.addr('resolver')}\n")
        return topo.leftovers

    with ThreadPoolExecutor(len(topos)) as threads:
        assert list(threads.map(use, topos)) == [[]] * len(topos)
    assert _ours(f"gc-{run_id}") == []
    assert not list(NETNS_ETC.glob(f"gc-{run_id}-*"))


@contextlib.contextmanager
def _frozen(pid: int, name: str) -> Iterator[Path]:
    """The process in a frozen cgroup (v1 freezer): like a process in uninterruptible
    sleep, it outlives SIGKILL until thawed."""
    group = FREEZER / name
    group.mkdir()
    try:
        (group / "cgroup.procs").write_text(str(pid))
        (group / "freezer.state").write_text("FROZEN")
        yield group
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # ends it as soon as it thaws
        (group / "freezer.state").write_text("THAWED")
        deadline = time.monotonic() + 10  # the killed process leaves the group as it exits
        while (group / "cgroup.procs").read_text().strip() and time.monotonic() < deadline:
            time.sleep(0.02)
        group.rmdir()


def test_a_namespace_that_will_not_go_is_a_leftover_not_an_error(tmp_path: Path) -> None:
    """A process that survives SIGKILL (frozen) keeps its namespace: down() reports it
    instead of raising and removes everything else, the next attempt comes up and down
    under names of its own, and `gatecrash clean` names it with a command (exit 1); once
    the process is gone, `clean` removes the namespace and exits 0."""
    pool, run_id = AddressPool(), _run_id("tfrz")
    first = NetnsTopology(run_id, 0, pool.acquire(), tmp_path / "a")
    first.up()
    voip = first.namespaces["voip"]
    sleeper = subprocess.Popen(first["voip"].wrap(["sleep", "300"]), start_new_session=True)
    try:
        with _frozen(sleeper.pid, f"gc-test-{run_id}"):
            first.down()  # must not raise
            assert first.leftovers == [
                f"namespace {voip}: processes {sleeper.pid} survived SIGKILL (kept so "
                "`gatecrash clean` finds them)"
            ]
            assert _ours(first.prefix) == [voip]
            assert not list(NETNS_ETC.glob(f"{first.prefix}-*"))

            with NetnsTopology(run_id, 1, pool.acquire(), tmp_path / "b") as second:
                second["client"].run(["ping", "-c", "1", "-W", "2", second.addr("voip")])
            assert second.leftovers == [] and _ours(second.prefix) == []

            done = _clean()
            assert done.returncode == 1, done.stdout + done.stderr
            assert "Traceback" not in done.stderr
            assert f"could not remove namespace {voip}: processes {sleeper.pid}" in done.stdout
            command = f"kill -9 {sleeper.pid} && ip netns del {voip}"
            assert f"  to remove it: {command}\n" in done.stdout
        sleeper.wait(5)  # thawed: the pending SIGKILL ends it
        again = _clean()
        assert again.returncode == 0, again.stdout + again.stderr
        assert _ours(first.prefix) == []
    finally:
        sleeper.kill()
        sleeper.wait(5)
        first.down()


def test_a_topology_that_fails_part_way_removes_what_it_made(tmp_path: Path) -> None:
    """`ip netns add` stops at a name that is taken (the last of nine): the eight made before
    it, the /etc/netns files and the taken one (it bears this attempt's name) all go."""
    run_id = _run_id("tpart")
    topo = NetnsTopology(run_id, 5, AddressPool().acquire(), tmp_path)
    taken = topo.namespaces["front"]
    subprocess.run(["ip", "netns", "add", taken], check=True)
    with pytest.raises(Exception, match="File exists"):
        topo.__enter__()
    assert topo.leftovers == []
    assert _ours(topo.prefix) == []
    assert not list(NETNS_ETC.glob(f"{topo.prefix}-*"))
