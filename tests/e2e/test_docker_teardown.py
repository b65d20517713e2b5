"""Docker tear-down that does not cascade: attempts side by side under names of their own,
a network that cannot be removed reported (not raised), left labelled and never reused, and
`gatecrash clean` naming it with a command instead of a traceback."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.images import BASE_IMAGE as BASE
from harness.images import connect, ensure_images
from harness.topology.addressing import AddressPool, dynamic_range
from harness.topology.docker import RUN_LABEL, SLOT_LABEL, DockerTopology
from tests.conftest import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client():
    assert os.geteuid() == 0, "docker e2e tests run as root with Docker (CI does)"
    ensure_images()
    return connect()


def _labelled(client, run_id: str) -> list[str]:
    filters = {"label": f"{RUN_LABEL}={run_id}"}
    return sorted(
        [
            *(
                c.name
                for c in client.containers.list(all=True, filters=filters, ignore_removed=True)
            ),
            *(n.name for n in client.networks.list(filters=filters)),
            *(v.name for v in client.volumes.list(filters=filters)),
        ]
    )


def _run_id(tag: str) -> str:
    return f"{tag}{os.getpid() % 100000}"


def _clean(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=REPO,
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, **env})  # fmt: skip


def test_attempts_side_by_side_from_threads_keep_to_their_own_names(client, tmp_path) -> None:
    """Two attempts of one run with the largest slots, built, used and removed at once from
    two threads: containers and networks of their own, labelled with their slot."""
    pool, run_id = AddressPool(), _run_id("dpar")
    topos = [DockerTopology(run_id, s, pool.acquire(), tmp_path / str(s)) for s in (99998, 99999)]

    def use(topo: DockerTopology) -> list[str]:
        with topo:
            filters = {"label": [f"{RUN_LABEL}={run_id}", f"{SLOT_LABEL}={topo.slot}"]}
            names = {c.name for c in client.containers.list(filters=filters)}
            assert names == set(topo.containers.values())
            nets = {n.name for n in client.networks.list(filters=filters)}
            assert nets == set(topo.networks.values())
            topo["client"].run(["ping", "-c", "1", "-W", "2", topo.addr("voip")])
        return topo.leftovers

    with ThreadPoolExecutor(len(topos)) as threads:
        assert list(threads.map(use, topos)) == [[], []]
    assert _labelled(client, run_id) == []


# One process builds the first attempt, waits while the test attaches a container of its
# own to that attempt's outside network, tears it down, then builds and removes a second
# attempt; it exits, as a finished run does, before `gatecrash clean` looks.
TWO_ATTEMPTS = """
import json, sys
from pathlib import Path
from harness.topology.addressing import AddressPool, dynamic_range
from harness.topology.docker import DockerTopology
run_id, work = sys.argv[1], Path(sys.argv[2])
pool = AddressPool()
first = DockerTopology(run_id, 0, pool.acquire(), work / "a")
first.__enter__()
print(json.dumps(first.networks), flush=True)
sys.stdin.readline()
first.down()
second = DockerTopology(run_id, 1, pool.acquire(), work / "b")
with second:
    ping = second["client"].run(["ping", "-c", "1", "-W", "2", second.addr("voip")], check=False)
print(json.dumps({"first": first.leftovers, "second": second.leftovers,
                  "ping": ping.returncode, "down_s": first.down_s}), flush=True)
"""


@pytest.fixture
def foreign(client) -> Iterator[list]:
    """Containers of someone else's (no gatecrash label), removed after the test."""
    made: list = []
    yield made
    for container in made:
        container.remove(force=True)


def _attach(client, name: str, network: str):
    """A running container of someone else's (no gatecrash label) on `network`."""
    return client.containers.run(BASE, ["sleep", "600"], name=name, network=network, detach=True)


def test_an_unremovable_network_is_a_leftover_and_the_next_attempt_is_fine(
    client, tmp_path, foreign
) -> None:
    run_id = _run_id("dnet")
    proc = subprocess.Popen(
        [sys.executable, "-c", TWO_ATTEMPTS, run_id, str(tmp_path)], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        networks = json.loads(proc.stdout.readline())
        outside = networks["outside"]
        squatter = f"gcx-attached-{run_id}"
        foreign.append(_attach(client, squatter, outside))
        proc.stdin.write("\n")
        proc.stdin.flush()
        report = json.loads(proc.stdout.readline())
        assert proc.wait(60) == 0
    finally:
        proc.kill()
    # down() did not raise: the network is named, the rest of the attempt is gone
    assert report["first"] == [
        f"network {outside}: error while removing network: network {outside} id "
        f"{client.networks.get(outside).id} has active endpoints; still attached: {squatter} "
        "(running, not of this run: left alone)"
    ]
    assert _labelled(client, run_id) == [outside], "only the leftover, still labelled"
    assert client.networks.get(outside).attrs["Labels"][SLOT_LABEL] == "0"
    # the next attempt, with names of its own, came up, worked and went
    assert report["second"] == [] and report["ping"] == 0

    done = _clean()
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert f"could not remove network {outside}: error while removing network" in done.stdout
    command = f"docker network disconnect -f {outside} {squatter} && docker network rm {outside}"
    assert f"  to remove it: {command}\n" in done.stdout
    subprocess.run(["sh", "-c", command], check=True, capture_output=True)
    assert _labelled(client, run_id) == []
    assert client.containers.get(squatter).status == "running", "only cut off, by the user"
    again = _clean()
    assert outside not in again.stdout


def test_a_topology_that_fails_part_way_removes_what_it_made(client, tmp_path, foreign) -> None:
    """The voip container's name is taken by someone else's container: up() fails, and the
    seven containers and two networks it made go; the other container stays."""
    run_id = _run_id("dpart")
    topo = DockerTopology(run_id, 3, AddressPool().acquire(), tmp_path)
    taken = topo.containers["voip"]
    foreign.append(client.containers.create(BASE, ["true"], name=taken))
    with pytest.raises(Exception, match="Conflict"):
        topo.__enter__()
    assert topo.leftovers == []
    assert _labelled(client, run_id) == []
    assert client.containers.get(taken).id == foreign[0].id


def test_clean_with_no_docker_daemon_says_so_without_a_traceback(client, tmp_path) -> None:
    done = _clean(DOCKER_HOST=f"unix://{tmp_path}/no-such.sock")
    assert "Traceback" not in done.stderr, done.stderr
    assert "docker objects not checked: cannot reach the Docker daemon" in done.stdout
    assert done.returncode == 0, done.stdout


TWO_TRIALS = """
name: e2e-docker-leftover
trials: 2
call_seconds: 1
apps: [sip]
tools: [direct]
censors: {open: []}
"""


def test_a_run_goes_on_after_a_trial_leaves_its_network_behind(client, tmp_path, foreign) -> None:
    """The report of issue 11 as it happened: trial 0's outside network cannot be removed
    (a container of someone else's is attached to it while the trial runs). Trial 0 keeps
    its measurement and names the network in `leftovers`; trial 1 has names of its own (and
    steps over the address block the leftover still holds) and works; `clean` names the
    network with the command that removes it."""
    from harness.topology.docker import PID_LABEL

    scenario = tmp_path / "two.yaml"
    scenario.write_text(TWO_TRIALS)
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--backend", "docker",
         "--jobs", "1", "--out", str(tmp_path / "out")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    events = client.events(
        decode=True,
        filters={"type": "container", "event": "start", "label": f"{PID_LABEL}={proc.pid}"},
    )
    try:
        first = next(iter(events))["Actor"]["Attributes"]
        outside = f"gc-{first[RUN_LABEL]}-{first[SLOT_LABEL]}-out"
        squatter = f"gcx-attached-{first[RUN_LABEL]}"
        foreign.append(_attach(client, squatter, outside))
        _, err = proc.communicate(timeout=180)
    finally:
        events.close()
        proc.kill()
    assert proc.returncode == 0, err
    results = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").open()]
    assert [(r["trial"], r["outcome"]) for r in results] == [(0, "ok"), (1, "ok")]
    assert len(results[0]["leftovers"]) == 1
    assert results[0]["leftovers"][0].startswith(f"network {outside}: ")
    assert f"still attached: {squatter}" in results[0]["leftovers"][0]
    assert results[1]["leftovers"] == []
    assert _labelled(client, first[RUN_LABEL]) == [outside]
    foreign[0].reload()
    squatter_addr = foreign[0].attrs["NetworkSettings"]["Networks"][outside]["IPAddress"]
    block = ipaddress.ip_network(client.networks.get(outside).attrs["IPAM"]["Config"][0]["Subnet"])
    assert ipaddress.ip_address(squatter_addr) in dynamic_range(block), "no role's address"

    done = _clean()
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stdout + done.stderr
    command = f"docker network disconnect -f {outside} {squatter} && docker network rm {outside}"
    assert f"  to remove it: {command}\n" in done.stdout
    subprocess.run(["sh", "-c", command], check=True, capture_output=True)
    assert _labelled(client, first[RUN_LABEL]) == []
