"""Harness faults end to end: a fault in one trial is retried and leaves the verdicts as
they were; faults in most trials of a cell make it `invalid` and the run exits 3.

The held-out case: on the Docker backend one trial's outside network was left with an
endpoint Docker would not let go ("network ... has active endpoints"), the next trial
reused the network's name and the rest of the run failed, scored as censorship. Here one
attempt's outside network gets a stray container attached before the attempt fails, the
fault is retried under new names, and the run's verdicts equal the netns backend's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.faults import InjectedFault
from harness.images import connect, ensure_images, node_image
from harness.report.summary import build_summary
from harness.results import final_attempts
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.topology.docker import RUN_LABEL, TRIAL_LABEL
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SCENARIO = """
name: faults
trials: 2
call_seconds: 1
apps: [xmpp]
tools: [direct]
censors:
  open: []
  chat-blocked: [{type: port_block, proto: tcp, ports: [5222]}]
xmpp: {messages: 5, interval_ms: 20, timeout_s: 3}
"""
FAULTY = ("open", "direct", "xmpp", 0)


def _verdicts(runner: Runner, results) -> dict[tuple[str, str, str], str]:
    summary = build_summary(runner.scenario, runner.run_id, "x", results)
    return {c.key: c.verdict for c in summary.cells}


def _docker_stray(runner: Runner, key, attempt: int) -> list[str]:
    """Attach a stray container to the attempt's outside network, as a stale endpoint
    would hold it; returns the container's id (for the test to remove)."""
    tdir = runner.trial_dir(*key, attempt)
    client = connect()
    (network,) = [
        n
        for n in client.networks.list(filters={"label": f"{TRIAL_LABEL}={tdir}"})
        if n.name.endswith("-out")
    ]
    stray = client.containers.run(
        node_image(), ["sleep", "600"], detach=True, network=network.name, auto_remove=False
    )
    return [stray.id]


@pytest.mark.parametrize("backend", ["netns", "docker"])
def test_a_fault_in_one_trial_is_retried_and_the_verdicts_stand(tmp_path, backend) -> None:
    assert os.geteuid() == 0, "e2e tests build namespaces: run them as root (CI does)"
    if backend == "docker":
        ensure_images()
    strays: list[str] = []

    def fail_once(phase, key, attempt) -> None:
        if key == FAULTY and attempt == 0 and phase == "servers":
            if backend == "docker":
                strays.extend(_docker_stray(runner, key, attempt))
            raise InjectedFault("the first attempt's servers did not come up")

    scenario = parse_scenario(SCENARIO)
    runner = Runner(scenario, tmp_path / backend, backend=backend, jobs=2, fault_hook=fail_once)
    try:
        results = runner.run()
    finally:
        for stray in strays:
            connect().containers.get(stray).remove(force=True)
    if backend == "docker":  # what stayed is what the fault record names; then it goes
        networks = connect().networks.list(filters={"label": f"{RUN_LABEL}={runner.run_id}"})
        named = " ".join(leftover for r in results for leftover in r.leftovers)
        assert all(n.name in named for n in networks), ([n.name for n in networks], named)
        for network in networks:
            network.remove()

    attempts = [(r.attempt, r.outcome) for r in results if r.key == FAULTY]
    assert sorted(attempts) == [(0, "harness-fault"), (1, "ok")]
    (fault,) = [r.fault for r in results if r.key == FAULTY and r.is_fault]
    assert fault is not None and (fault.phase, fault.kind) == ("servers", "injected-servers")
    others = [r for r in results if r.key != FAULTY]
    assert len(others) == 3 and not any(r.is_fault for r in others)
    final = {r.key: r.outcome for r in final_attempts(results)}
    assert final[FAULTY] == "ok"
    assert all(final[("chat-blocked", "direct", "xmpp", n)] != "ok" for n in range(2))

    # The same scenario without the fault: the verdicts are the ones the fault left.
    clean = Runner(scenario, tmp_path / f"{backend}-clean", backend=backend, jobs=2)
    assert _verdicts(runner, results) == _verdicts(clean, clean.run())


BROKEN_TOOL = """
name: broken
description: a tool whose server side exits at once (a harness fault, never censorship)
protocols: [TCP]
binaries: {sh: dash}
exposes: socks5
endpoint: "127.0.0.1:{port.local}"
capabilities: {tcp: true, udp: none}
ports: {server: 8445, local: 1087}
server:
  - name: server
    command: [sh, -c, "echo 'no such config' >&2; exit 3"]
    ready: {port: "{port.server}"}
client:
  - name: client
    command: [sh, -c, "sleep 60"]
    ready: {port: "{port.local}"}
"""


def test_faults_in_most_trials_make_the_cell_invalid_and_the_run_exit_3(tmp_path) -> None:
    tools = tmp_path / "tools" / "broken"
    tools.mkdir(parents=True)
    (tools / "tool.yaml").write_text(BROKEN_TOOL)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(
        SCENARIO.replace("tools: [direct]", "tools: [direct, broken]").replace(
            "  chat-blocked: [{type: port_block, proto: tcp, ports: [5222]}]\n", ""
        )
    )
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness.cli", "run", str(scenario), "--out", str(out),
            "--tools-dir", str(tmp_path / "tools"), "--retries", "1", "--jobs", "2"]  # fmt: skip
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    cells = {(c["censor"], c["tool"], c["app"]): c for c in summary["cells"]}
    broken = cells[("open", "broken", "xmpp")]
    assert broken["verdict"] == "invalid" and "tool-start" in broken["reason"]
    assert cells[("open", "direct", "xmpp")]["verdict"] != "invalid"
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    faults = [r for r in records if r["tool"] == "broken"]
    assert len(faults) == 4 and all(r["outcome"] == "harness-fault" for r in faults)
    assert {r["attempt"] for r in faults} == {0, 1}
    assert all("no technique" in r["fault"]["detail"] for r in faults)
    assert "trying again" in proc.stdout
    assert Path(out / "report.html").exists()
