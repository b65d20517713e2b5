"""The docker backend end to end: real containers, real Docker networks, the real censor.

The node image is built once per session (cached by its tag, which hashes the Dockerfile), so
only the first run on a fresh machine pays for it. Calls are 1 s and every quickstart cell
gets one trial, to stay affordable: with one trial `works` is reachable (Wilson 1/1 =
[0.21, 1], threshold scaled to 0.2) but `signalling-blocked` is not (0/1 = [0, 0.79]; the
blocked bound may not exceed the works bound), so such a cell reads `inconclusive` on both
backends. The per-trial facts (outcome, registered, set up) are compared as well, and they
do tell a blocked call from a working one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from harness.images import DockerUnavailable, connect, ensure_images
from harness.report.summary import build_summary
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.topology.addressing import AddressPool
from harness.topology.base import WIRE_GSO_MAX
from harness.topology.cleanup import CleanReport, clean_docker, live_runs
from harness.topology.docker import RUN_LABEL, DockerTopology
from harness.topology.process import Supervisor
from tests.conftest import REPO, host_network_state

pytestmark = pytest.mark.e2e

QUICKSTART = REPO / "scenarios" / "quickstart.yaml"


@pytest.fixture(scope="module")
def images() -> dict:
    assert os.geteuid() == 0, "docker e2e tests run as root with Docker (CI does)"
    try:
        connect(timeout=10)
    except DockerUnavailable as exc:  # fail, never skip: the message says what to install/run
        pytest.fail(f"the Docker backend's tests need a Docker daemon: {exc}", pytrace=False)
    start = time.monotonic()
    result = ensure_images()
    return {"build_s": time.monotonic() - start, "result": result}


@pytest.fixture(scope="module")
def client(images):
    return connect()


def _labelled(client, run_id: str) -> list[str]:
    filters = {"label": f"{RUN_LABEL}={run_id}"}
    return [
        *(c.name for c in client.containers.list(all=True, filters=filters)),
        *(n.name for n in client.networks.list(filters=filters)),
        *(v.name for v in client.volumes.list(filters=filters)),
    ]


@pytest.fixture
def docker_topology(images, tmp_path: Path) -> Iterator[DockerTopology]:
    topo = DockerTopology(f"t{os.getpid() % 100000}", 0, AddressPool().acquire(), tmp_path)
    with topo:
        yield topo


def _quickstart_scenario():
    """scenarios/quickstart.yaml itself, only shorter: 1 trial of 1 s per cell."""
    data = yaml.safe_load(QUICKSTART.read_text())
    data.update(trials=1, call_seconds=1, xmpp={"messages": 5, "interval_ms": 20})
    data["thresholds"] = {"works_min_cssr_lower": 0.2, "blocked_max_cssr_upper": 0.2}
    data.pop("expect", None)
    return parse_scenario(yaml.safe_dump(data))


def _run(backend: str, out: Path) -> dict:
    scenario = _quickstart_scenario()
    runner = Runner(scenario, out, backend=backend)
    results = runner.run()
    summary = build_summary(scenario, runner.run_id, backend, results)
    cells = {c.key: c.verdict for c in summary.cells}
    events = {}
    for r in results:
        log = Path(r.logs["censor"])  # no file: the censor had nothing to say ("open")
        lines = log.read_text().splitlines() if log.exists() else []
        kinds = set()
        for e in map(json.loads, lines):
            kinds.add((e.get("technique"), e.get("action"), e.get("layer"), e.get("rule")))
        events[(r.censor, r.tool, r.app)] = kinds
    facts = {
        (r.censor, r.tool, r.app): (
            r.outcome,
            r.call.registered if r.call else None,
            r.call.setup_ok if r.call else None,
            r.message.delivered if r.message else None,
        )
        for r in results
    }
    return {"cells": cells, "events": events, "facts": facts, "results": results,
            "run_id": runner.run_id}  # fmt: skip


@pytest.fixture(scope="module")
def parity(images, client, tmp_path_factory) -> dict:
    before = host_network_state()
    netns = _run("netns", tmp_path_factory.mktemp("netns"))
    docker = _run("docker", tmp_path_factory.mktemp("docker"))
    return {"netns": netns, "docker": docker, "before": before, "after": host_network_state()}


def test_quickstart_verdicts_match_netns_cell_by_cell(parity) -> None:
    netns, docker = parity["netns"]["cells"], parity["docker"]["cells"]
    assert len(netns) == 12
    assert docker == netns
    assert parity["docker"]["facts"] == parity["netns"]["facts"]
    # The comparison means something: the quickstart's three outcomes are all there.
    for backend in ("netns", "docker"):
        cells, facts = parity[backend]["cells"], parity[backend]["facts"]
        assert cells[("open", "direct", "sip")] == "works"
        assert cells[("open", "direct", "xmpp")] == "works"
        assert cells[("sip-blocked", "shadowsocks", "sip")] == "works"
        assert cells[("udp-throttle", "direct", "sip")] == "media-blocked"
        assert facts[("sip-blocked", "direct", "sip")][:3] == ("timeout", False, False)


def test_censor_logs_the_same_events_on_both_backends(parity) -> None:
    netns, docker = parity["netns"]["events"], parity["docker"]["events"]
    assert docker == netns
    blocked = docker[("sip-blocked", "direct", "sip")]
    assert ("port_block", "matched", "kernel", None) in blocked
    assert any(t == "udp_throttle" and a == "install" for t, a, _, _ in
               docker[("udp-throttle", "direct", "sip")])  # fmt: skip
    # and the kernel counted real packets in the container, not zeros
    result = next(r for r in parity["docker"]["results"]
                  if (r.censor, r.tool, r.app) == ("sip-blocked", "direct", "sip"))  # fmt: skip
    matched = [json.loads(x) for x in Path(result.logs["censor"]).read_text().splitlines()]
    assert any(e["action"] == "matched" and e["packets"] > 0 for e in matched)


def test_docker_run_leaves_no_labelled_object_and_the_host_as_it_was(parity, client) -> None:
    assert _labelled(client, parity["docker"]["run_id"]) == []
    # Routes and firewall exactly as before; links too, but for the veth ends Docker itself
    # creates and deletes asynchronously (any container on the machine makes them).
    before, after = parity["before"], parity["after"]
    assert after["routes"] == before["routes"]
    assert after["iptables"] == before["iptables"]
    assert _own_links(after["links"]) == _own_links(before["links"])


def _own_links(links: str) -> list[str]:
    return [line for line in links.splitlines() if " veth" not in line and " br-" not in line]


def test_inside_to_outside_packets_cross_the_censor(docker_topology) -> None:
    topo = docker_topology
    client, censor, voip = topo["client"], topo["censor"], topo["voip"]
    assert client.run(["ip", "route", "show", "default"]).stdout.split()[2] == topo.addresses.addr(
        "censor", "inside"
    )
    # Count, then drop, client->voip packets in the censor's FORWARD path.
    count = ["iptables", "-w", "-I", "FORWARD", "-s", topo.addr("client"), "-d", topo.addr("voip")]
    censor.run(count)
    assert (
        client.run(["ping", "-c", "2", "-W", "1", topo.addr("voip")], check=False).returncode == 0
    )
    counters = censor.run(["iptables", "-w", "-L", "FORWARD", "-v", "-x", "-n"]).stdout
    assert int(counters.splitlines()[2].split()[0]) >= 2, counters
    censor.run(["iptables", "-w", "-I", "FORWARD", "-s", topo.addr("client"), "-j", "DROP"])
    assert (
        client.run(["ping", "-c", "2", "-W", "1", topo.addr("voip")], check=False).returncode != 0
    )
    assert voip.run(["ping", "-c", "1", "-W", "1", topo.addr("chat")], check=False).returncode == 0


def test_hosts_send_wire_sized_packets(docker_topology) -> None:
    for role in ("client", "voip", "proxy"):
        details = docker_topology[role].run(["ip", "-d", "link", "show", "eth0"]).stdout
        assert f"gso_max_size {WIRE_GSO_MAX} " in details, (role, details)


def test_hosts_resolve_through_the_run_and_nothing_leaves_it(docker_topology) -> None:
    topo = docker_topology
    assert (
        topo["client"]
        .run(["cat", "/etc/resolv.conf"])
        .stdout.startswith(f"nameserver {topo.addr('resolver')}\n")
    )
    assert (
        f"{topo.addr('voip')} voip.gatecrash.test" in topo["voip"].run(["cat", "/etc/hosts"]).stdout
    )
    assert topo["censor"].run(["ip", "route", "show", "default"]).stdout == ""
    # The host's own addresses (and so anything beyond it) are unreachable from every side.
    host_ips = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    assert host_ips
    for role in ("client", "voip", "censor"):
        for ip in host_ips[:2]:
            probe = topo[role].run(["ping", "-c", "1", "-W", "1", ip], check=False)
            assert probe.returncode != 0, f"{role} reached the host at {ip}"


def test_stopping_a_program_stops_it_inside_the_container(docker_topology, tmp_path) -> None:
    supervisor = Supervisor(tmp_path / "logs")
    code = ("import signal, sys, time\n"
            "signal.signal(signal.SIGTERM, lambda *a: (print('bye', flush=True), sys.exit(3)))\n"
            "print('ready', flush=True)\ntime.sleep(60)\n")  # fmt: skip
    voip = docker_topology["voip"]
    try:
        proc = supervisor.start(voip, "sleeper", [sys.executable, "-c", code])
        proc.wait_for_line("ready", 15)
        stubborn = supervisor.start(voip, "stubborn", ["sh", "-c", "trap '' TERM; sleep 60"])
        stubborn.wait_until(
            lambda: "sleep 60" in voip.run(["ps", "-eo", "args"]).stdout, 10, "sleep"
        )
        proc.stop()
        assert proc.popen.returncode == 3
        assert "bye" in proc.stdout_text(), "the program's last words came back"
        stubborn.stop()
    finally:
        supervisor.stop_all()
    left = voip.run(["ps", "-eo", "args"]).stdout
    assert "time.sleep" not in left and "sleep 60" not in left, left


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    pytest.fail(f"no {what} within {timeout} s")


def test_clean_removes_what_a_sigkilled_docker_run_left(images, client, tmp_path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text("name: long\ntrials: 1\ncall_seconds: 60\napps: [sip]\n"
                        "tools: [direct]\ncensors: {open: []}\n")  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--backend", "docker",
         "--out", str(tmp_path / "o")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:

        def caller_up() -> str | None:
            for c in client.containers.list(filters={"label": f"{RUN_LABEL}"}):
                if c.labels.get("org.gatecrash.pid") == str(proc.pid) and c.name.endswith(
                    "-client"
                ):
                    top = c.top(ps_args="-eo pid,args")["Processes"]
                    if any("harness.apps.sip.agent" in p[-1] for p in top):
                        return c.labels[RUN_LABEL]
            return None

        run_id = _wait_for(caller_up, 60, "caller in the run's client container")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert len(_labelled(client, run_id)) == 10, "8 containers and 2 networks left behind"
    done = subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "10 docker objects" in done.stdout
    assert _labelled(client, run_id) == []


def test_clean_leaves_a_live_topology_and_foreign_objects_alone(docker_topology, client) -> None:
    """The docker part of `gatecrash clean` (the netns part has its own tests)."""
    foreign = client.networks.create("gc-not-ours", labels={"org.example": "1"})
    try:
        report = CleanReport()
        clean_docker(report, live_runs(), force=False)
        assert docker_topology.run_id in report.skipped_live_runs
        assert len(_labelled(client, docker_topology.run_id)) == 10
        client.networks.get(foreign.id)  # still there
    finally:
        foreign.remove()


def _run_cli(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\ntrials: 1\napps: [sip]\ntools: [direct]\ncensors: {open: []}\n")
    return subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--backend", "docker",
         "--out", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=120, env={**os.environ, **env},
    )  # fmt: skip


def test_no_docker_daemon_is_a_clear_error_and_nothing_is_made(tmp_path) -> None:
    proc = _run_cli(tmp_path, {"DOCKER_HOST": f"unix://{tmp_path}/no-such.sock"})
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the Docker daemon" in proc.stderr
    assert "--backend netns" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_missing_image_that_cannot_be_built_is_a_clear_error(images, client, tmp_path) -> None:
    before = {i.id for i in client.images.list()}
    containers = {c.id for c in client.containers.list(all=True)}
    debootstrap_free = os.pathsep.join(
        p for p in os.environ["PATH"].split(os.pathsep) if not Path(p, "debootstrap").exists()
    )
    assert shutil.which("docker", path=debootstrap_free), "the docker CLI stays reachable"
    proc = _run_cli(
        tmp_path,
        {
            "PATH": debootstrap_free,
            "GATECRASH_BASE_IMAGE": "gatecrash-test/no-such-base:none",
            "GATECRASH_NODE_IMAGE": "gatecrash-test/no-such-node:none",
        },
    )
    assert proc.returncode == 2, proc.stderr
    assert "debootstrap" in proc.stderr and "gatecrash images build" in proc.stderr
    assert not (tmp_path / "o").exists()
    assert {i.id for i in client.images.list()} == before
    assert {c.id for c in client.containers.list(all=True)} == containers


def test_a_taken_address_block_is_named_and_nothing_is_left(images, client, tmp_path) -> None:
    """A topology whose block another Docker network holds says who holds it (e.g. a
    crashed run's network) and leaves nothing of its own behind."""
    from docker.types import IPAMConfig, IPAMPool

    from harness.topology.docker import AddressInUse

    addresses = AddressPool().acquire()
    squatter = client.networks.create(
        "not-gatecrash", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(addresses.outside))])
    )
    try:
        topo = DockerTopology(f"t{os.getpid() % 100000}", 1, addresses, tmp_path)
        with pytest.raises(AddressInUse, match=r"network not-gatecrash .*gatecrash clean"):
            topo.__enter__()
        assert _labelled(client, topo.run_id) == []
    finally:
        squatter.remove()


SMALL = """
name: e2e-docker-taken-block
trials: 2
call_seconds: 1
apps: [sip]
tools: [direct]
censors: {open: []}
"""


def test_a_run_steps_over_a_block_another_network_holds(images, client, tmp_path) -> None:
    """Docker networks are daemon-wide: with the first block held by someone else (another
    run, a crashed run's leftovers), a run sets that block aside and uses the next one,
    in every trial; the holder is left alone and nothing of the run stays."""
    from docker.types import IPAMConfig, IPAMPool

    first = AddressPool().acquire()
    squatter = client.networks.create(
        "not-gatecrash-2", ipam=IPAMConfig(pool_configs=[IPAMPool(subnet=str(first.inside))])
    )
    try:
        runner = Runner(parse_scenario(SMALL), tmp_path / "out", backend="docker")
        results = runner.run()
        assert [r.outcome for r in results] == ["ok", "ok"], [r.error for r in results]
        assert client.networks.get(squatter.id).name == "not-gatecrash-2"
        assert _labelled(client, runner.run_id) == []
    finally:
        squatter.remove()
