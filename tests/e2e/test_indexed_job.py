"""The Indexed Job contract without a cluster: the node image run N times, as N pods would
be, each `gatecrash run --shards N` with its own JOB_COMPLETION_INDEX and the netns backend
inside the container; `gatecrash merge` of the N directories gives the same cells and
verdicts as a plain serial run of the same scenario, every trial exactly once.

What a container needs to build trial namespaces inside itself (the same as the Job's pod,
which simply runs privileged): NET_ADMIN (links, routes, iptables, tc), SYS_ADMIN (`ip
netns` mounts), NET_RAW, a writable /proc/sys (systempaths=unconfined: forwarding and
rp_filter sysctls in the censor's namespace) and a tmpfs /run (namespace mounts and run
markers, an emptyDir of medium Memory in the Job). `--privileged` gives all of it, where
the daemon may grant every capability.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import EXIT_OK, main
from harness.images import ensure_images, node_image
from harness.report.loading import load_run, read_results_tolerant
from harness.topology.docker import shared_mounts

pytestmark = pytest.mark.e2e

SHARDS = 3
# xmpp's client port blocked: 4 trials per cell decide works and blocked (Wilson 4/4 lower
# bound 0.51, 0/4 upper bound 0.49).
SCENARIO = """\
name: indexed-job
trials: 4
apps: [xmpp]
tools: [direct]
censors:
  open: []
  xmpp-blocked: [{type: port_block, proto: tcp, ports: [5222]}]
xmpp: {messages: 3, interval_ms: 20, timeout_s: 5}
thresholds: {works_min_cssr_lower: 0.5, blocked_max_cssr_upper: 0.5}
expect:
  - {censor: open, tool: direct, app: xmpp, verdict: works}
  - {censor: xmpp-blocked, tool: direct, app: xmpp, verdict: blocked}
"""
POD_FLAGS = [
    "--cap-add", "NET_ADMIN", "--cap-add", "SYS_ADMIN", "--cap-add", "NET_RAW",
    "--security-opt", "systempaths=unconfined", "--tmpfs", "/run",
]  # fmt: skip


def pod_argv(name: str, index: int, work: Path, scenario: Path) -> list[str]:
    """`docker run` of one pod: checkout and interpreter read-only at their own paths (as
    the Docker backend mounts them), the work directory (scenario, results) writable."""
    mounts, _ = shared_mounts(work)
    volumes = []
    for mount in mounts:
        suffix = ":ro" if mount["ReadOnly"] else ""
        volumes += ["-v", f"{mount['Source']}:{mount['Target']}{suffix}"]
    gatecrash = str(Path(sys.executable).parent / "gatecrash")
    return [
        "docker", "run", "--rm", "--name", name, *POD_FLAGS, *volumes,
        "-e", f"JOB_COMPLETION_INDEX={index}", "-w", str(work), node_image(),
        gatecrash, "run", str(scenario), "--shards", str(SHARDS),
        "--out", str(work / f"shard-{index}"),
    ]  # fmt: skip


def verdicts(directory: Path) -> dict[tuple[str, str, str], tuple[str, int]]:
    summary = json.loads((directory / "summary.json").read_text())
    return {
        (c["censor"], c["tool"], c["app"]): (c["verdict"], c["trials"]) for c in summary["cells"]
    }


def test_shards_in_containers_merge_to_the_serial_run(tmp_path: Path) -> None:
    ensure_images()  # the node image holds the programs; built when missing
    work = tmp_path.resolve()
    scenario = work / "indexed-job.yaml"
    scenario.write_text(SCENARIO)
    names = [f"gc-indexed-job-{os.getpid()}-{i}" for i in range(SHARDS)]
    pods = [
        subprocess.Popen(pod_argv(names[i], i, work, scenario), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
        for i in range(SHARDS)
    ]  # fmt: skip
    try:
        outputs = [pod.communicate(timeout=600)[0] for pod in pods]
    finally:
        subprocess.run(["docker", "rm", "-f", *names], capture_output=True, check=False)
    for index, (pod, output) in enumerate(zip(pods, outputs, strict=True)):
        assert pod.returncode == EXIT_OK, f"shard {index}:\n{output[-3000:]}"
        assert f"shard {index}/{SHARDS}:" in output

    shard_dirs = [work / f"shard-{i}" for i in range(SHARDS)]
    merged = work / "merged"
    assert main(["merge", str(merged), *map(str, shard_dirs)]) == EXIT_OK
    serial = work / "serial"
    assert main(["run", str(scenario), "--out", str(serial)]) == EXIT_OK

    assert (
        verdicts(merged)
        == verdicts(serial)
        == {
            ("open", "direct", "xmpp"): ("works", 4),
            ("xmpp-blocked", "direct", "xmpp"): ("blocked", 4),
        }
    )
    keys = [r.key for r in load_run(merged).results]
    assert len(keys) == len(set(keys)) == 8  # every trial exactly once
    per_shard = [len(json.loads((d / "shard.json").read_text())["trials"]) for d in shard_dirs]
    assert sum(per_shard) == 8 and min(per_shard) >= 2
    recorded = {
        r.key: r for d in shard_dirs for r in read_results_tolerant(d / "results.jsonl").results
    }
    for result in load_run(merged).results:  # every kept log is in the merged directory too
        assert Path(result.logs["dir"]).is_dir() and Path(result.logs["dir"]).is_relative_to(merged)
        for name, path in recorded[result.key].logs.items():
            assert any(Path(path).is_relative_to(d) for d in shard_dirs)
            assert Path(result.logs[name]).exists() == Path(path).exists(), name
