"""The policy scorecard, from constructed trials and censor event logs: effectiveness on
the targets, evasion by each tool, collateral damage with the rule that did it, the
sentence, undecided cells counted apart, and `targets:` in scenario files."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from censor_sims.profiles import load_profile, profile_names
from harness.registry import APPS
from harness.report.html import render
from harness.report.schema import summary_schema
from harness.report.scorecard import build_scorecard, censor_rules
from harness.report.scorecard_view import collateral_text
from harness.report.summary import build_summary
from harness.report.summary_model import Summary, SummaryCell
from harness.report.terminal import print_summary
from harness.results import MessageMetrics, TrialResult
from harness.scenario import ScenarioError, parse_scenario
from tests.unit.test_report_files import call_trial

# voip-blocker's profile aims at sip (and baresip, webrtc: not in this run); xmpp is its
# bystander. 4 trials: Wilson 4/4 = [0.51, 1] works, 0/4 = [0, 0.49] blocked.
SCENARIO = """\
name: collateral-unit
trials: 4
apps: [sip, xmpp]
tools: [direct, shadowsocks]
censors:
  open: []
  voip: voip-blocker
thresholds: {works_min_cssr_lower: 0.5, blocked_max_cssr_upper: 0.5}
"""

SIP_DROP = {
    "technique": "voip-signalling", "action": "drop", "layer": "engine",
    "rule": "flow recognised as sip", "analyzer": {"sip": {"method": "REGISTER"}},
    "flow": "udp 10.77.1.10:34122 -> 10.77.1.138:5060",
}  # fmt: skip
BOOKKEEPING = [
    {"technique": "voip-signalling", "action": "install", "layer": "kernel", "rule": "x"},
    {"technique": "engine", "action": "start", "layer": "engine"},
    {"technique": "engine", "action": "matched", "layer": "kernel", "packets": 4},
    {"technique": "voip-media", "action": "matched", "layer": "kernel", "packets": 0},
]


def chat(censor: str, tool: str, n: int, connected: bool = True) -> TrialResult:
    message = MessageMetrics(connected=connected, sent=10 if connected else 0,
                             delivered=10 if connected else 0)  # fmt: skip
    return TrialResult(
        run_id="r1", scenario="collateral-unit", censor=censor, tool=tool, app="xmpp", trial=n,
        started_at="2026-11-28T00:00:00+00:00", outcome="ok" if connected else "timeout",
        message=message,
    )  # fmt: skip


def with_events(trial: TrialResult, directory: Path, events: list[dict]) -> TrialResult:
    """The trial with a censor.jsonl of these events, where the runner keeps it."""
    trial_dir = directory / "/".join(map(str, trial.key))
    trial_dir.mkdir(parents=True)
    log = trial_dir / "censor.jsonl"
    log.write_text("".join(json.dumps(e) + "\n" for e in events) + '{"cut short')
    trial.logs = {"dir": str(trial_dir), "censor": str(log)}
    return trial


def run(
    tmp_path: Path, direct_sip_ok: int = 0, xmpp_ok: int = 4, ss_sip_ok: int = 4
) -> list[TrialResult]:
    """open: everything works. voip: direct sets up `direct_sip_ok` of 4 calls (the rest
    dropped as SIP), shadowsocks `ss_sip_ok`; direct xmpp connects `xmpp_ok` of 4 times,
    the others dropped by the SIP rule (an over-match) as the event log says."""
    out = []
    for n in range(4):
        out += [call_trial("open", tool, n) for tool in ("direct", "shadowsocks")]
        out += [chat("open", tool, n) for tool in ("direct", "shadowsocks")]
        out.append(call_trial("voip", "direct", n, ok=n < direct_sip_ok))
        out.append(call_trial("voip", "shadowsocks", n, ok=n < ss_sip_ok))
        harmed = n >= xmpp_ok
        events = BOOKKEEPING + ([SIP_DROP, SIP_DROP] if harmed else [])
        out.append(with_events(chat("voip", "direct", n, not harmed), tmp_path, events))
        out.append(chat("voip", "shadowsocks", n))
    for trial in out:
        trial.scenario = "collateral-unit"
    return out


def card_of(tmp_path: Path, **kwargs) -> tuple[Summary, dict]:
    """The summary, and its one card as summary.json has it."""
    summary = build_summary(parse_scenario(SCENARIO), "r1", "netns", run(tmp_path, **kwargs))
    (card,) = summary.model_dump(mode="json")["scorecard"]
    return summary, card


def test_effectiveness_and_evasion_count_target_cells(tmp_path) -> None:
    _, card = card_of(tmp_path)
    assert card["censor"] == "voip" and card["targets"] == ["sip"]
    assert card["bystanders"] == ["xmpp"] and card["baseline"] == "open"
    eff = card["effectiveness"]
    assert (eff["blocked"], eff["decided"], eff["share"]) == (1, 1, 1.0)
    assert eff["blocked_apps"] == ["sip"] and eff["undecided"] == []
    assert card["evasion"]["tools"] == {"shadowsocks": {"restored": ["sip"], "undecided": []}}
    assert card["evasion"]["share"] == 1.0
    assert card["evasion"]["tools_restoring_all"] == ["shadowsocks"]


def test_a_harmed_bystander_names_its_loss_and_the_rule(tmp_path) -> None:
    _, card = card_of(tmp_path, xmpp_ok=0)
    (xmpp,) = card["collateral"]
    assert xmpp["verdict"] == "blocked" and xmpp["open_verdict"] == "works"
    assert xmpp["harmed"] is True and xmpp["cssr_points"] == -1.0
    assert xmpp["delivery"] is None  # nothing was sent under the censor: not measured
    (rule,) = xmpp["rules"]  # bookkeeping and zero-packet counters are not actions
    assert rule == {"technique": "voip-signalling", "rule": "flow recognised as sip",
                    "analyzer": "sip", "events": 8, "trials": 4}  # fmt: skip
    assert card["sentence"] == (
        "voip blocked 1/1 target apps directly (sip), 1 of 1 tools restored every blocked "
        "target (1/1 restored by at least one), and it also broke: xmpp (blocked, CSSR -100 "
        "points, by voip-signalling)."
    )


def test_no_harm_is_said_with_the_bystanders_named(tmp_path) -> None:
    _, card = card_of(tmp_path)
    (xmpp,) = card["collateral"]
    assert xmpp["harmed"] is False and xmpp["rules"] == []
    assert xmpp["cssr_points"] == 0.0 and xmpp["delivery"] == 0.0
    assert card["sentence"].endswith("and no bystander was harmed (xmpp).")


def test_inconclusive_cells_are_counted_apart(tmp_path) -> None:
    # 2/4 calls and 2/4 sessions: intervals too wide to say blocked or works
    _, card = card_of(tmp_path, direct_sip_ok=2, xmpp_ok=2)
    eff = card["effectiveness"]
    assert (eff["blocked"], eff["decided"], eff["share"]) == (0, 0, None)
    assert eff["undecided"] == ["sip"]
    assert card["evasion"]["restored_by_any"] == [] and card["evasion"]["share"] is None
    (xmpp,) = card["collateral"]
    assert xmpp["verdict"] == "inconclusive" and xmpp["harmed"] is None
    assert "blocked 0" not in card["sentence"] and "no bystander" not in card["sentence"]
    assert card["sentence"] == (
        "voip's effect on its targets (sip) is undecided, and the effect on xmpp is undecided."
    )


def test_a_tool_cell_undecided_is_not_restored(tmp_path) -> None:
    _, card = card_of(tmp_path, ss_sip_ok=2)
    assert card["evasion"]["tools"]["shadowsocks"] == {"restored": [], "undecided": ["sip"]}
    assert "0 of 1 tools restored every blocked target (0/1 restored" in card["sentence"]


def test_the_summary_with_a_scorecard_follows_the_schema(tmp_path) -> None:
    summary, _ = card_of(tmp_path, xmpp_ok=0)
    validator = jsonschema.Draft202012Validator(
        summary_schema(2), format_checker=jsonschema.FormatChecker()
    )
    validator.validate(summary.model_dump(mode="json"))


def test_terminal_and_html_show_the_scorecard(tmp_path) -> None:
    summary, card = card_of(tmp_path, xmpp_ok=0)
    console = Console(record=True, width=200)
    print_summary(summary, console)
    text = console.export_text()
    assert "scorecard" in text and card["sentence"] in text
    assert "voip-signalling: flow recognised as sip (sip)" in text
    page = render(summary, [], {}, "")
    assert page.index('id="scorecard"') < page.index("xmpp: verdicts")
    assert "it also broke: xmpp (blocked, CSSR -100 points, by voip-signalling)" in page


def test_censor_rules_skip_a_missing_log() -> None:
    trial = call_trial("voip", "direct", 0)
    trial.logs = {"censor": "/nonexistent/censor.jsonl"}
    assert censor_rules([trial]) == []


def test_an_inline_censor_has_no_targets_unless_named() -> None:
    inline = "  inline: [{type: port_block, ports: [5060]}]\n"
    text = SCENARIO.replace("thresholds:", inline + "thresholds:")
    scenario = parse_scenario(text)
    assert scenario.targets == {"voip": ["sip"]}
    named = parse_scenario(text + "targets: {inline: [sip], voip: [sip, xmpp]}\n")
    assert named.targets == {"inline": ["sip"], "voip": ["sip", "xmpp"]}


@pytest.mark.parametrize(
    ("targets", "where", "message"),
    [
        ("{vop: [sip]}", "9:11: targets.vop", "censor 'vop' is not in this scenario (did you "
         "mean 'voip'?); valid: open, voip"),
        ("{voip: [sip, xmp]}", "9:23: targets.voip.1", "app 'xmp' is not in this scenario "
         "(did you mean 'xmpp'?); valid: sip, xmpp"),
        ("{voip: [sip, sip]}", "9:23: targets.voip.1", "app 'sip' is listed twice"),
    ],
)  # fmt: skip
def test_targets_naming_what_is_not_in_the_scenario_are_errors(targets, where, message) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse_scenario(SCENARIO + f"targets: {targets}\n", "s.yaml")
    assert exc.value.problems == [f"s.yaml:{where}: {message}"]


def test_every_shipped_profile_declares_targets_among_the_apps() -> None:
    for name in profile_names():
        targets = load_profile(name)["targets"]
        assert isinstance(targets, list) and set(targets) <= set(APPS), name


def workload_cell(**fields) -> SummaryCell:
    """A direct workload cell with `fields` as given (the rest do not enter a scorecard)."""
    base = {"tool": "direct", "kind": "workload", "trials": 4, "valid_trials": 4,
            "successes": 4, "cssr_ci": [0.51, 1.0], "reason": ""}  # fmt: skip
    return SummaryCell(**base | fields)


def test_a_workload_bystander_reports_completeness_and_its_ratios() -> None:
    cell = {"censor": "c", "tool": "direct", "app": "download", "kind": "workload",
            "verdict": "degraded", "cssr": 1.0, "completeness": 1.0,
            "setup_ms_p50": 4600.0, "throughput_mbps_median": 2.0}  # fmt: skip
    base = {**cell, "censor": "open", "verdict": "works", "setup_ms_p50": 2000.0,
            "throughput_mbps_median": 8.0}  # fmt: skip
    cells = [workload_cell(**base), workload_cell(**cell)]
    (card,) = [
        c.model_dump(mode="json") for c in build_scorecard(cells, {"open": 0, "c": 1}, {}, [])
    ]
    (download,) = card["collateral"]
    assert download["workload_ratio"] == {"duration": 2.3, "throughput": 0.25}
    assert download["harmed"] is True and download["delivery"] == 0.0
    assert card["sentence"] == (
        "c declares no target among these apps, and it also broke: download (degraded, "
        "duration x2.3, throughput x0.25)."
    )


def test_a_blocked_workload_says_completed_not_cssr_and_a_slowed_one_its_ratio() -> None:
    """A page load is not a call: its success ratio is worded 'completed' (workloads
    completed), its share 'completeness'; one within the works limits still shows how much
    slower it got."""
    web = {"censor": "c", "tool": "direct", "app": "web", "kind": "workload",
           "verdict": "blocked", "cssr": 0.0, "completeness": 0.0}  # fmt: skip
    slow = {**web, "censor": "s", "verdict": "works", "cssr": 1.0, "completeness": 1.0,
            "setup_ms_p50": 4200.0}  # fmt: skip
    base = {**slow, "censor": "open", "setup_ms_p50": 500.0}
    cells = [workload_cell(**base), workload_cell(**web), workload_cell(**slow)]
    blocked, slowed = build_scorecard(cells, {"open": 0, "c": 1, "s": 1}, {}, [])
    assert blocked.sentence == (
        "c declares no target among these apps, and it also broke: web (blocked, completed "
        "-100 points, completeness -100 points)."
    )
    assert collateral_text(blocked.collateral[0]) == (
        "web: blocked, completed -100 points, completeness -100 points"
    )
    assert collateral_text(slowed.collateral[0]) == "web: works, not harmed, duration x8.4"
