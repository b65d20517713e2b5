"""Tear-down's decisions without a daemon: which endpoints are force-disconnected, what a
leftover says, that nothing raises, and what `gatecrash clean` prints and returns. The real
objects are exercised in tests/e2e/test_docker_teardown.py and test_topology_teardown.py."""

from __future__ import annotations

import argparse

import pytest
import requests
from docker.errors import APIError, NotFound

from harness import cli
from harness.topology import docker_remove
from harness.topology.addressing import AddressPool
from harness.topology.base import check_names
from harness.topology.cleanup import CleanReport
from harness.topology.docker import RUN_LABEL, DockerTopology
from harness.topology.leftovers import Leftover
from harness.topology.netns import NetnsTopology


class FakeContainer:
    def __init__(self, cid: str, name: str, run: str | None, status: str = "running") -> None:
        self.id, self.name, self.status = cid, name, status
        self.labels = {RUN_LABEL: run} if run else {}


class FakeContainers:
    def __init__(self, *containers: FakeContainer) -> None:
        self.by_id = {c.id: c for c in containers}

    def get(self, cid: str) -> FakeContainer:
        if cid not in self.by_id:
            raise NotFound(f"No such container: {cid}")
        return self.by_id[cid]


class FakeClient:
    def __init__(self, *containers: FakeContainer) -> None:
        self.containers = FakeContainers(*containers)


class FakeNetwork:
    """Removal fails while any endpoint is listed, and `failures` more times after."""

    def __init__(self, name: str, endpoints: dict[str, str], failures: int = 0) -> None:
        self.name, self.id, self.failures = name, "f" * 64, failures
        self.attrs = {"Containers": {cid: {"Name": n} for cid, n in endpoints.items()}}
        self.disconnected: list[str] = []
        self.removed = False

    def reload(self) -> None:
        pass

    def disconnect(self, container: str, force: bool = False) -> None:
        assert force
        self.disconnected.append(container)
        listed = self.attrs["Containers"]
        for cid, endpoint in list(listed.items()):
            if container in (cid, endpoint["Name"]):
                del listed[cid]

    def remove(self) -> None:
        if self.attrs["Containers"]:
            raise APIError("409", explanation=f"network {self.name} has active endpoints")
        if self.failures:
            self.failures -= 1
            raise requests.ConnectionError("daemon restarting")
        self.removed = True


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch) -> None:
    monkeypatch.setattr(docker_remove, "ATTEMPTS", 3)


def test_stale_and_own_endpoints_are_force_disconnected_then_the_network_goes() -> None:
    own = FakeContainer("c1", "gc-r1-0-voip", "r1", status="exited")
    net = FakeNetwork("gc-r1-0-out", {"c1": own.name, "ep-gone": "gc-r1-0-chat"})
    assert docker_remove.remove_network(FakeClient(own), net, "r1") is None
    # the container that no longer exists is disconnected by its name, as `docker network
    # disconnect -f NET NAME` does for a stale endpoint
    assert net.disconnected == ["c1", "gc-r1-0-chat"]
    assert net.removed


def test_a_running_container_of_someone_else_is_left_attached_and_named() -> None:
    theirs = FakeContainer("c9", "debug-shell", None)
    net = FakeNetwork("gc-r1-0-out", {"c9": "debug-shell", "ep-gone": "gc-r1-0-chat"})
    leftover = docker_remove.remove_network(FakeClient(theirs), net, "r1")
    assert net.disconnected == ["gc-r1-0-chat"] and not net.removed
    assert leftover == Leftover(
        "network",
        "gc-r1-0-out",
        "network gc-r1-0-out has active endpoints; still attached: debug-shell (running, "
        "not of this run: left alone)",
        "docker network disconnect -f gc-r1-0-out debug-shell && docker network rm gc-r1-0-out",
    )
    assert str(leftover).startswith("network gc-r1-0-out: network gc-r1-0-out has active")


def test_a_failure_that_passes_is_retried() -> None:
    net = FakeNetwork("gc-r1-0-in", {}, failures=2)
    assert docker_remove.remove_network(FakeClient(), net, "r1") is None
    assert net.removed


def test_a_failure_that_lasts_is_a_leftover_not_an_exception() -> None:
    net = FakeNetwork("gc-r1-0-in", {}, failures=99)
    leftover = docker_remove.remove_network(FakeClient(), net, "r1")
    assert leftover is not None and leftover.reason == "daemon restarting"
    assert leftover.command == "docker network rm gc-r1-0-in"


def test_an_unreachable_daemon_while_listing_is_a_leftover() -> None:
    class Down:
        class containers:  # the SDK's attribute name
            @staticmethod
            def list(**kwargs):
                raise requests.ConnectionError("connection refused")

    removal = docker_remove.remove_labelled(Down(), {RUN_LABEL: "r1"})
    assert removal.removed == []
    assert [str(x) for x in removal.leftovers] == [
        "docker org.gatecrash.run=r1: connection refused"
    ]


def test_names_stay_short_and_unambiguous_for_every_slot(tmp_path) -> None:
    addresses = AddressPool().acquire()
    netns = NetnsTopology("abc123", 999_999, addresses, tmp_path)
    docker = DockerTopology("abc123", 999_999, addresses, tmp_path)
    names = [*netns.namespaces.values(), *docker.containers.values(), *docker.networks.values()]
    assert max(map(len, names)) <= 27 and all(n.startswith("gc-abc123-999999-") for n in names)
    check_names("a" * 12, 0)
    for run_id, slot in (("a-b", 0), ("ABC", 0), ("a" * 13, 0), ("abc", -1), ("abc", 10**6)):
        with pytest.raises(ValueError):
            check_names(run_id, slot)


def _clean_cli(monkeypatch, capsys, report: CleanReport) -> tuple[int, str]:
    monkeypatch.setattr(cli, "need_privileges", lambda: None)
    monkeypatch.setattr("harness.topology.cleanup.clean", lambda force: report)
    status = cli.cmd_clean(argparse.Namespace(force=False))
    return status, capsys.readouterr().out


def test_clean_lists_what_it_could_not_remove_and_exits_1(monkeypatch, capsys) -> None:
    report = CleanReport(namespaces=["gc-a-0-sw"], docker=["gc-b-0-in"])
    report.leftovers.append(
        Leftover("network", "gc-b-0-out", "has active endpoints [x]", "docker network rm x")
    )
    status, out = _clean_cli(monkeypatch, capsys, report)
    assert status == 1
    assert out.splitlines() == [
        "removed 1 namespaces, 0 processes, 0 files, 1 docker objects",
        "could not remove network gc-b-0-out: has active endpoints [x]",
        "  to remove it: docker network rm x",
    ]


def test_clean_exits_0_when_everything_went_even_without_docker(monkeypatch, capsys) -> None:
    report = CleanReport(docker_unreachable="cannot reach the Docker daemon at unix:///x")
    status, out = _clean_cli(monkeypatch, capsys, report)
    assert status == 0
    assert "docker objects not checked: cannot reach the Docker daemon" in out
