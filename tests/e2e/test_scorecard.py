"""The scorecard of a real run: voip-blocker aimed at sip, with xmpp its bystander, the
direct control and shadowsocks, against the open network. It must say what the cells
measured: sip blocked directly and restored by the tool, xmpp left alone.

4 trials a cell: the fewest that tell works from blocked (Wilson 4/4 = [0.51, 1], 0/4 =
[0, 0.49] at limits of 0.5); short calls and few messages keep it under a minute.
"""

from __future__ import annotations

import time

import pytest
from rich.console import Console

from harness.report.scorecard_view import print_scorecard
from harness.report.summary import build_summary
from harness.runner import Runner
from harness.scenario import parse_scenario

pytestmark = pytest.mark.e2e

SCENARIO = """
name: e2e-scorecard
trials: 4
call_seconds: 1
apps: [sip, xmpp]
tools: [direct, shadowsocks]
xmpp: {messages: 3, interval_ms: 20}
thresholds: {works_min_cssr_lower: 0.5, blocked_max_cssr_upper: 0.5}
censors:
  open: []
  voip-blocker: voip-blocker
targets: {voip-blocker: [sip]}
"""


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> dict:
    scenario = parse_scenario(SCENARIO)
    runner = Runner(scenario, tmp_path_factory.mktemp("scorecard"), jobs=4)
    started = time.monotonic()
    results = runner.run()
    summary = build_summary(scenario, runner.run_id, "netns", results)
    wall_s = time.monotonic() - started
    console = Console(record=True, width=160)
    print_scorecard(summary, console)
    return summary.model_dump(mode="json") | {"wall_s": wall_s, "printed": console.export_text()}


def verdict(summary: dict, censor: str, tool: str, app: str) -> str:
    return next(c["verdict"] for c in summary["cells"] if (c["censor"], c["tool"], c["app"])
                == (censor, tool, app))  # fmt: skip


def test_the_scorecard_says_what_the_cells_measured(scored) -> None:
    (card,) = scored["scorecard"]  # open has no techniques: the baseline, not scored
    assert (card["censor"], card["targets"], card["bystanders"]) == (
        "voip-blocker", ["sip"], ["xmpp"])  # fmt: skip
    assert verdict(scored, "voip-blocker", "direct", "sip") == "signalling-blocked"
    assert card["effectiveness"]["blocked_apps"] == ["sip"]
    assert card["effectiveness"]["share"] == 1.0
    restored = verdict(scored, "voip-blocker", "shadowsocks", "sip") == "works"
    assert restored, "shadowsocks carries SIP inside its tunnel, past the DPI"
    assert card["evasion"]["tools"]["shadowsocks"]["restored"] == ["sip"]
    (xmpp,) = card["collateral"]
    assert xmpp["verdict"] == verdict(scored, "voip-blocker", "direct", "xmpp") == "works"
    assert xmpp["open_verdict"] == "works" and xmpp["harmed"] is False
    assert xmpp["rules"] == []
    assert card["sentence"] == (
        "voip-blocker blocked 1/1 target apps directly (sip), 1 of 1 tools restored every "
        "blocked target (1/1 restored by at least one), and no bystander was harmed (xmpp)."
    )
    assert card["sentence"] in scored["printed"]


def test_the_run_is_short(scored) -> None:
    assert scored["wall_s"] < 60
