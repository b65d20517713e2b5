"""The regression gate end to end: a baseline from a real run where a SIP call works, then
the same cell under a censor of the same name that now throttles UDP. The gate must fail
naming the cell, and pass the good run against its own baseline.

One cell, two 1 s calls per run keep this near 20 s.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest

from harness.cli import EXIT_EXPECT_FAILED, EXIT_OK, main
from harness.report.schema import summary_schema
from harness.runner import Runner
from harness.scenario import parse_scenario

pytestmark = pytest.mark.e2e

SCENARIO = """
name: e2e-gate
trials: 2
call_seconds: 1
apps: [sip]
tools: [direct]
# 2 trials: Wilson 2/2 = [0.34, 1], 0/2 = [0, 0.66]
thresholds: {{works_min_cssr_lower: 0.3, blocked_max_cssr_upper: 0.3}}
censors:
  open: {techniques}
"""


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    assert os.geteuid() == 0, "end-to-end tests build namespaces: run them as root (CI does)"
    out = {}
    for name, techniques in (("good", "[]"), ("throttled", "[{type: udp_throttle, rate: 8kbit}]")):
        scenario = parse_scenario(SCENARIO.format(techniques=techniques))
        directory = tmp_path_factory.mktemp(name)
        Runner(scenario, directory).run()
        out[name] = directory
    return out


def test_gate_fails_naming_the_regressed_cell_and_passes_against_itself(
    runs, tmp_path, capsys
) -> None:
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(runs["good"]), "-o", str(baseline)]) == EXIT_OK
    cell = json.loads(baseline.read_text())["cells"][0]
    assert cell["verdict"] == "works", cell  # the premise: the open network carries the call
    capsys.readouterr()

    assert main(["gate", str(runs["throttled"]), "--baseline", str(baseline)]) == (
        EXIT_EXPECT_FAILED
    )
    out = capsys.readouterr().out
    assert "REGRESSED open / direct / sip" in out and "gate failed" in out

    assert main(["gate", str(runs["good"]), "--baseline", str(baseline)]) == EXIT_OK
    assert "gate passed" in capsys.readouterr().out


def test_real_summaries_follow_the_published_schema(runs, tmp_path) -> None:
    validator = jsonschema.Draft202012Validator(
        summary_schema(), format_checker=jsonschema.FormatChecker()
    )
    for name, directory in runs.items():
        target = tmp_path / f"{name}.json"
        main(["report", str(directory), "--json", str(target)])
        validator.validate(json.loads(target.read_text()))
