"""Shared fixtures: a trial topology in namespaces, torn down whatever the test does."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.topology.addressing import AddressPool
from harness.topology.netns import NetnsTopology
from harness.topology.process import Supervisor

REPO = Path(__file__).resolve().parent.parent


DOCKER_OWNED = re.compile(r"DOCKER|docker0|\bbr-[0-9a-f]{12}\b")


def host_network_state() -> dict[str, str]:
    """The host's own links, routes and firewall, without counters and timestamps.

    The Docker daemon's own objects (docker0, br-<id> bridges, the veths attached to them,
    DOCKER chains and rules naming those bridges) are left out: the daemon changes them on
    its own schedule (a removed container's veth goes asynchronously), and gatecrash's
    netns backend never touches them."""

    def run(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout

    firewall = "\n".join(
        line.split(" [")[0] if line.startswith(":") else line
        for line in run("iptables-save").splitlines()
        if not line.startswith("#") and not DOCKER_OWNED.search(line)
    )
    links = "\n".join(
        " ".join(line.split()[:2])
        for line in run("ip", "-o", "link").splitlines()
        if not DOCKER_OWNED.search(line)
    )
    routes = "".join(
        line for line in run("ip", "route").splitlines(True) if not DOCKER_OWNED.search(line)
    )
    return {"links": links, "routes": routes, "iptables": firewall}


@pytest.fixture
def topology(tmp_path: Path) -> Iterator[NetnsTopology]:
    assert os.geteuid() == 0, "end-to-end tests build namespaces: run them as root (CI does)"
    topo = NetnsTopology(f"t{os.getpid() % 100000}", 0, AddressPool().acquire(), tmp_path)
    with topo:
        yield topo


@pytest.fixture
def supervisor(tmp_path: Path) -> Iterator[Supervisor]:
    sup = Supervisor(tmp_path / "logs")
    try:
        yield sup
    finally:
        sup.stop_all()


def start_censor(topology, supervisor, tmp_path: Path, *techniques):
    """A censor with `techniques` on the topology's censor host (its DPI engine under
    `supervisor`), logging to tmp_path/censor.jsonl; returns (censor, log)."""
    from censor_sims.censor import Censor
    from censor_sims.events import EventLog

    log = EventLog(tmp_path / "censor.jsonl")
    censor = Censor(topology["censor"], list(techniques), topology.addresses.as_dict(), log,
                    supervisor, tmp_path)  # fmt: skip
    censor.start()
    return censor, log
