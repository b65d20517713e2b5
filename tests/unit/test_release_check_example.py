"""The release-check example: its suite validates, and the CI job's and the README's
gatecrash commands are the ones gatecrash's parser accepts (run with --tool-binary, then
gate against the released version's baseline), in the same words in both places."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from harness.cli import build_parser
from harness.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
SUITE = REPO / "examples" / "release-check" / "obfs4.yaml"


def test_the_suite_validates_with_both_obfs4_variants() -> None:
    scenario = load_scenario(SUITE)
    variants = scenario.tool_variants()
    assert variants["obfs4-iat1"].options == {"iat-mode": 1}
    assert variants["obfs4"].name == variants["obfs4-iat1"].name == "obfs4"


def _commands(lines: list[str]) -> list[list[str]]:
    return [line.split("gatecrash ", 1)[1].split() for line in lines if "bin/gatecrash " in line]


def test_the_ci_job_runs_the_candidate_then_gates_it() -> None:
    job = yaml.safe_load((REPO / "examples/ci/release-check.yml").read_text())["jobs"]
    steps = job["release-check"]["steps"]
    assert job["release-check"]["container"]["options"] == "--privileged"
    run, gate = (build_parser().parse_args(c) for c in _commands([s.get("run", "") for s in steps]))
    assert run.command == "run" and run.tool_binary == ["obfs4=./build/obfs4proxy"]
    assert run.scenario == "gatecrash/examples/release-check/obfs4.yaml"
    assert gate.command == "gate" and gate.dir == run.out


def test_the_readme_shows_the_commands_as_run() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("### Checking a release of your tool") :]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None
    commands = [line.split() for line in block.group(1).splitlines()]
    parsed = [build_parser().parse_args(c[1:]) for c in commands]
    assert [p.command for p in parsed] == ["run", "baseline", "run", "gate"]
    released, baseline, candidate, gate = parsed
    assert released.scenario == candidate.scenario == str(SUITE.relative_to(REPO))
    assert candidate.tool_binary == ["obfs4=./build/obfs4proxy"]
    assert baseline.dir == released.out and gate.baseline == baseline.output
    assert gate.dir == candidate.out
    ci = (REPO / "examples/ci/release-check.yml").read_text()
    assert "--tool-binary obfs4=./build/obfs4proxy --out results/candidate" in ci
