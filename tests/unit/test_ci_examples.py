"""examples/ci: the CI files are valid YAML with the keys their systems need (a shard
matrix, a merge job that needs it), and every gatecrash command in them, expanded by a
shell the way the CI runner expands it, is accepted by gatecrash's own argument parser,
with the shards together covering 0..N-1."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from harness.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
CI = REPO / "examples" / "ci"


def gatecrash_commands(lines: list[str]) -> list[str]:
    return [line.split("gatecrash ", 1)[1] for line in lines if ".venv/bin/gatecrash " in line]


def parsed(command: str, env: dict[str, str]):
    """The command's arguments after the shell's expansion, parsed as gatecrash parses."""
    script = f'set -- {command}; for a in "$@"; do printf "%s\\n" "$a"; done'
    shell = subprocess.run(
        ["sh", "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return build_parser().parse_args(shell.stdout.splitlines())


def test_github_actions_shards_then_merges_and_gates() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    assert workflow.get("on", workflow.get(True))  # PyYAML reads the bare key `on` as True
    jobs = workflow["jobs"]
    shard, merge = jobs["shard"], jobs["merge"]
    shards = int(workflow["env"]["SHARDS"])
    assert shard["strategy"]["matrix"]["shard"] == list(range(shards))
    assert shard["container"]["options"] == "--privileged"
    assert merge["needs"] == "shard"
    uses = [step.get("uses", "") for step in shard["steps"]]
    assert any(u.startswith("actions/upload-artifact") for u in uses)
    assert any(s.get("uses", "").startswith("actions/download-artifact") for s in merge["steps"])

    env = {"SCENARIO": workflow["env"]["SCENARIO"], "SHARDS": str(shards)}
    (run,) = gatecrash_commands([s.get("run", "") for s in shard["steps"]])
    seen = set()
    for index in shard["strategy"]["matrix"]["shard"]:
        args = parsed(run.replace("${{ matrix.shard }}", str(index)), env)
        assert args.command == "run" and args.scenario == "scenarios/quickstart.yaml"
        seen.add(args.shard)
        assert args.out == f"results/shard-{index}"
    assert seen == {f"{i}/{shards}" for i in range(shards)}
    commands = [
        parsed(c, env) for c in gatecrash_commands([s.get("run", "") for s in merge["steps"]])
    ]
    assert [c.command for c in commands] == ["merge", "gate"]
    assert commands[0].dirs == ["shards/shard-*"] and commands[1].dir == commands[0].out


def test_gitlab_ci_runs_parallel_shards_then_merges_and_gates() -> None:
    pipeline = yaml.safe_load((CI / "gitlab-ci.yml").read_text())
    shard, merge = pipeline["gatecrash-shard"], pipeline["gatecrash-merge"]
    total = shard["parallel"]
    assert merge["needs"] == ["gatecrash-shard"]
    assert pipeline["stages"].index(shard["stage"]) < pipeline["stages"].index(merge["stage"])
    assert "results/" in shard["artifacts"]["paths"]

    env = {"SCENARIO": pipeline["variables"]["SCENARIO"], "CI_NODE_TOTAL": str(total)}
    (run,) = gatecrash_commands(shard["script"])
    seen = {parsed(run, {**env, "CI_NODE_INDEX": str(node)}).shard for node in range(1, total + 1)}
    assert seen == {f"{i}/{total}" for i in range(total)}  # CI_NODE_INDEX is 1-based
    commands = [parsed(c, env) for c in gatecrash_commands(merge["script"])]
    assert [c.command for c in commands] == ["merge", "gate"]
    assert commands[0].junit == merge["artifacts"]["reports"]["junit"]
    assert commands[1].dir == commands[0].out
