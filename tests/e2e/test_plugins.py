"""An app and a technique added in one package each (tests/plugins), outside harness/ and
censor_sims/: one registry line for the app, nothing but the import for the technique.
Validated with the same FILE:LINE:COL errors as the built-ins, run end to end through the
real topology: the toy echo works on the open network, and the toy technique, decided in
the censor's DPI engine (which imports it by module name), breaks it."""

from __future__ import annotations

import pytest

from censor_sims.technique import Technique
from harness import registry
from harness.registry import app_kinds
from harness.runner import Runner
from harness.scenario import ScenarioError, parse_scenario
from harness.scoring.verdict import score_cells
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SCENARIO = """\
name: e2e-plugins
trials: 1
apps: [toy-echo]
tools: [direct]
thresholds: {works_min_cssr_lower: 0.2, blocked_max_cssr_upper: 0.2}
censors:
  open: []
  toy: [{type: toy_payload_drop, marker: hello}]
toy_echo: {datagrams: 4}
"""


@pytest.fixture
def toy_app(monkeypatch):
    """The one line that adds the app, the toy technique, and the repo on the path of the
    censor's engine."""
    from tests.plugins.toy_technique import ToyPayloadDrop

    # Registered for this test alone: later tests list the built-in techniques only.
    Technique.registry.pop("toy_payload_drop", None)
    monkeypatch.setitem(Technique.registry, "toy_payload_drop", ToyPayloadDrop)
    monkeypatch.setitem(registry.APPS, "toy-echo", "tests.plugins.toy_echo:PLUGIN")
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def test_the_toy_apps_block_is_validated_by_its_own_model(toy_app) -> None:
    bad = SCENARIO.replace("{datagrams: 4}", "{datagrams: 0, colour: red}")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad, "toy.yaml")
    text = str(err.value)
    assert "toy.yaml:9:" in text and "datagrams" in text and "at least 1" in text, text
    assert "colour" in text and "payload" in text, text  # the unknown key, the valid ones
    with pytest.raises(ScenarioError, match=r"toy\.yaml:8:\d+: censors\.toy\.0\.marker: "):
        parse_scenario(SCENARIO.replace("marker: hello", "marker: ''"), "toy.yaml")
    with pytest.raises(ScenarioError, match=r"toy\.yaml:8:.*toy_payload_drop"):  # a valid type
        parse_scenario(SCENARIO.replace("type: toy_payload_drop", "type: toy_drop"), "toy.yaml")


def test_the_toy_app_runs_and_the_toy_technique_blocks_it(toy_app, tmp_path) -> None:
    scenario = parse_scenario(SCENARIO)
    assert scenario.options("toy-echo").datagrams == 4
    results = Runner(scenario, tmp_path, jobs=2).run()
    cells = {
        c.censor: c for c in score_cells(results, scenario.thresholds, app_kinds(["toy-echo"]))
    }
    assert cells["open"].kind == "workload" and cells["open"].verdict == "works", cells["open"]
    assert cells["toy"].verdict == "blocked", cells["toy"]
    blocked = next(r for r in results if r.censor == "toy")
    assert blocked.workload is not None and blocked.workload.completed == 0
    events = (
        tmp_path / "trials" / "toy" / "direct" / "toy-echo" / "0" / "censor.jsonl"
    ).read_text()
    assert "toy_payload_drop: payload carries 'hello'" in events
