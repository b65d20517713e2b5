"""Baselines and the regression gate, and the direct control's uplift and validity."""

from __future__ import annotations

import json

import pytest

from harness.cli import EXIT_BAD_INPUT, EXIT_EXPECT_FAILED, EXIT_OK, main
from harness.report.baseline import (
    Baseline,
    BaselineCell,
    BaselineError,
    compare,
    compare_cell,
    load_baseline,
    make_baseline,
)
from harness.report.controls import CONTROL_NOTE, annotate_controls
from harness.report.junit import junit_tree
from harness.report.summary import build_summary
from harness.report.summary_model import FaultTotals, Summary, SummaryCell, SummaryThresholds
from harness.scenario import parse_scenario
from harness.scoring.verdict import CellScore
from tests.unit.test_report_files import (
    call_trial,
    chat_trial,
    unit_results,
    unit_scenario,
    write_run,
)

CELL = ("throttle", "shadowsocks", "sip")


def old_cell(verdict="works", cssr=1.0, ci=(0.8, 1.0), mos=4.4) -> BaselineCell:
    return BaselineCell(
        censor="c", tool="t", app="sip", verdict=verdict, cssr=cssr, cssr_ci=list(ci),
        mos_median=mos, trials=16,
    )  # fmt: skip


# A scored SIP cell of 16 trials; the tests below set the fields they are about.
CELL_FIELDS = {"censor": "c", "tool": "t", "app": "sip", "kind": "call", "trials": 16,
               "valid_trials": 16, "successes": 16, "cssr": 1.0, "cssr_ci": [0.8, 1.0],
               "verdict": "works", "reason": ""}  # fmt: skip


def scored_cell(**fields) -> CellScore:
    return CellScore(**CELL_FIELDS | fields)


def new_cell(verdict="works", cssr=1.0, ci=(0.8, 1.0), mos=4.4, **fields) -> SummaryCell:
    return SummaryCell(**CELL_FIELDS | {"verdict": verdict, "cssr": cssr, "cssr_ci": list(ci),
                                        "mos_median": mos} | fields)  # fmt: skip


def summary_of(*cells: SummaryCell) -> Summary:
    """A summary of just these cells: the gate compares nothing else."""
    return Summary(scenario="s", run_id="r1", backend="netns", generated_at="",
                   thresholds=SummaryThresholds(), cells=list(cells), faults=FaultTotals(),
                   expectations=[])  # fmt: skip


@pytest.mark.parametrize(
    ("before", "after", "worse"),
    [
        ("works", "degraded", True),
        ("degraded", "media-blocked", True),
        ("media-blocked", "signalling-blocked", True),
        ("works", "blocked", True),
        ("signalling-blocked", "blocked", False),  # equally bad
        ("degraded", "works", False),
    ],
)
def test_verdict_order(before, after, worse) -> None:
    change = compare_cell(old_cell(before), new_cell(after), 0.3)
    assert (change is not None and change.fails) == worse


def test_nothing_changed_reports_nothing() -> None:
    assert compare_cell(old_cell(), new_cell(mos=4.3), 0.3) is None


def test_cssr_drop_with_disjoint_intervals_regresses() -> None:
    change = compare_cell(old_cell(), new_cell(cssr=0.4, ci=(0.2, 0.6)), 0.3)
    assert change is not None and change.fails
    assert "do not overlap" in change.reasons[0]


def test_cssr_drop_with_overlapping_intervals_is_flaky_looking_not_failed() -> None:
    change = compare_cell(old_cell(ci=(0.7, 1.0)), new_cell(cssr=0.9, ci=(0.6, 0.98)), 0.3)
    assert change is not None and change.status == "flaky-looking" and not change.fails


def test_mos_drop_beyond_margin_regresses_within_margin_does_not() -> None:
    change = compare_cell(old_cell(), new_cell(mos=4.0), 0.3)
    assert change is not None and change.fails and "median MOS 4.40 -> 4.00" in change.reasons[0]
    assert compare_cell(old_cell(), new_cell(mos=4.2), 0.3) is None
    assert compare_cell(old_cell(), new_cell(mos=4.0), 0.5) is None


def test_invalid_is_reported_not_failed() -> None:
    change = compare_cell(old_cell(), new_cell("invalid", cssr=0.0, ci=(0.0, 0.2)), 0.3)
    assert change is not None and change.status == "invalid" and not change.fails


def test_missing_and_new_cells_are_reported_not_failed() -> None:
    baseline = Baseline(baseline_version=1, scenario="s", cells=[old_cell()])
    other = new_cell(censor="d")
    changes = compare(baseline, summary_of(other), 0.3)
    assert [(c.label, c.status) for c in changes] == [("c / t / sip", "missing"),
                                                      ("d / t / sip", "new")]  # fmt: skip
    assert not any(c.fails for c in changes)


def test_baseline_keeps_the_compared_fields() -> None:
    summary = build_summary(unit_scenario(), "r1", "netns", unit_results())
    baseline = make_baseline(summary)
    assert baseline["baseline_version"] == 1 and baseline["run_id"] == "r1"
    assert set(baseline["cells"][0]) == {
        "censor", "tool", "app", "verdict", "cssr", "cssr_ci", "mos_median", "trials", "reason"
    }  # fmt: skip
    assert len(baseline["cells"]) == len(summary.cells)


def test_cli_gate_fails_on_regression_naming_the_cell(tmp_path, capsys) -> None:
    good = write_run(tmp_path / "good", unit_results())
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(good), "-o", str(baseline)]) == EXIT_OK
    assert main(["gate", str(good), "--baseline", str(baseline)]) == EXIT_OK
    assert "no cell changed" in capsys.readouterr().out

    results = [
        call_trial(*CELL[:2], r.trial, ok=False) if r.cell == CELL else r for r in unit_results()
    ]
    bad = write_run(tmp_path / "bad", results)
    assert main(["gate", str(bad), "--baseline", str(baseline)]) == EXIT_EXPECT_FAILED
    out = capsys.readouterr().out
    assert "REGRESSED throttle / shadowsocks / sip: verdict works -> signalling-blocked" in out
    assert "gate failed" in out


def test_cli_gate_mos_margin_option(tmp_path, capsys) -> None:
    good = write_run(tmp_path / "good", unit_results())
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(good), "-o", str(baseline)]) == EXIT_OK
    results = [
        call_trial(*CELL[:2], r.trial, mos=4.35) if r.cell == CELL else r for r in unit_results()
    ]
    # MOS 4.4 -> 4.35 with R unchanged: inside the default margin, outside a 0.01 margin.
    run = write_run(tmp_path / "run", results)
    assert main(["gate", str(run), "--baseline", str(baseline)]) == EXIT_OK
    argv = ["gate", str(run), "--baseline", str(baseline), "--mos-margin", "0.01"]
    assert main(argv) == EXIT_EXPECT_FAILED
    assert "throttle / shadowsocks / sip" in capsys.readouterr().out


def test_cli_gate_flaky_looking_passes(tmp_path, capsys) -> None:
    # 8/8 -> 7/8: both `works` (Wilson lower 0.68 and 0.53 >= 0.5), intervals overlap.
    good = write_run(tmp_path / "good", unit_results(trials=8))
    baseline = tmp_path / "baseline.json"
    main(["baseline", str(good), "-o", str(baseline)])
    results = [
        call_trial(*CELL[:2], r.trial, ok=r.trial != 0) if r.cell == CELL else r
        for r in unit_results(trials=8)
    ]
    run = write_run(tmp_path / "run", results)
    assert main(["gate", str(run), "--baseline", str(baseline)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "flaky-looking throttle / shadowsocks / sip" in out and "gate passed" in out


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "baseline file not found"),
        ('{"cells": [', "baseline is not valid JSON"),
        ('{"baseline_version": 1, "scenario": "x", "cells": [{"censor": "a"}]}',
         "not a gatecrash baseline"),
        ('{"baseline_version": 7, "scenario": "x", "cells": []}', "baseline_version 7"),
        ("[1, 2]", "not a gatecrash baseline"),
    ],
)  # fmt: skip
def test_cli_gate_bad_baseline_exits_2_naming_the_file(tmp_path, capsys, content, says) -> None:
    run = write_run(tmp_path / "run", unit_results())
    path = tmp_path / "base.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError):
        load_baseline(path)
    assert main(["gate", str(run), "--baseline", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert str(path) in err and says in err


def test_cli_gate_and_baseline_bad_run_dir_exit_2(tmp_path, capsys) -> None:
    good = write_run(tmp_path / "good", unit_results())
    baseline = tmp_path / "baseline.json"
    main(["baseline", str(good), "-o", str(baseline)])
    assert main(["gate", str(tmp_path / "nope"), "--baseline", str(baseline)]) == EXIT_BAD_INPUT
    assert main(["baseline", str(tmp_path / "nope"), "-o", str(baseline)]) == EXIT_BAD_INPUT
    assert "no such results directory" in capsys.readouterr().err
    assert json.loads(baseline.read_text())["cells"]  # the failed baseline left it alone


# --- the direct control: uplift and control validity ---------------------------------


def test_uplift_is_tool_minus_control_and_null_for_the_control() -> None:
    summary = build_summary(unit_scenario(), "r1", "netns", unit_results(throttle_ok=1))
    cells = {
        (c["censor"], c["tool"], c["app"]): c for c in summary.model_dump(mode="json")["cells"]
    }
    assert cells[("throttle", "direct", "sip")]["uplift"] is None
    uplift = cells[CELL]["uplift"]
    assert uplift == {"cssr_points": 0.75, "mos": 0.0}
    assert cells[("open", "shadowsocks", "xmpp")]["uplift"] == {"cssr_points": 0.0, "mos": None}


def test_no_control_ran_means_no_uplift() -> None:
    results = [r for r in unit_results() if r.tool != "direct"]
    summary = build_summary(unit_scenario(), "r1", "netns", results).model_dump(mode="json")
    assert all(c["uplift"] is None and not c["control_uncensored"] for c in summary["cells"])


def test_control_that_works_under_a_censor_flags_the_tool_cells() -> None:
    summary = build_summary(unit_scenario(), "r1", "netns", unit_results())
    cells = summary.model_dump(mode="json")["cells"]
    flagged = {(c["censor"], c["tool"], c["app"]) for c in cells
               if c["control_uncensored"]}  # fmt: skip
    # throttle has a technique; its direct xmpp control works, its direct sip control does
    # not; the open censor has no technique, so it is uncensored by design.
    assert flagged == {("throttle", "shadowsocks", "xmpp")}
    cell = next(c for c in cells if c["control_uncensored"])
    assert cell["verdict"] == "works"  # the tool cell keeps its verdict
    case = (
        junit_tree(summary)
        .getroot()
        .find("testsuite/testcase[@name='throttle / shadowsocks / xmpp']")
    )
    assert case is not None and CONTROL_NOTE in case.findtext("system-out", "")


def test_control_note_in_the_terminal(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", unit_results(throttle_ok=4))
    assert main(["report", str(run)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"throttle / shadowsocks / sip: {CONTROL_NOTE}" in out
    assert f"throttle / shadowsocks / xmpp: {CONTROL_NOTE}" in out


def test_annotate_controls_by_censor_technique_count() -> None:
    control = scored_cell(censor="c", tool="direct", verdict="works", cssr=1.0, mos_median=4.4)
    tool = control.model_copy(update={"tool": "shadowsocks", "cssr": 0.5, "mos_median": 4.0})
    inputs = [control.model_dump(), tool.model_dump()]
    censored = annotate_controls([control, tool], {"c": 1})
    assert censored[1].control_uncensored is True
    assert censored[1].uplift is not None
    assert censored[1].uplift.model_dump() == {"cssr_points": -0.5, "mos": -0.4}
    assert annotate_controls([control, tool], {"c": 0})[1].control_uncensored is False
    assert [control.model_dump(), tool.model_dump()] == inputs  # inputs are not modified


def test_message_cells_get_uplift_without_mos() -> None:
    scenario = parse_scenario(
        "name: m\napps: [xmpp]\ntools: [direct, shadowsocks]\ncensors: {open: []}\n"
    )
    results = [chat_trial("open", t, n) for t in ("direct", "shadowsocks") for n in range(3)]
    cells = build_summary(scenario, "r1", "netns", results).model_dump(mode="json")["cells"]
    assert cells[1]["uplift"] == {"cssr_points": 0.0, "mos": None}


# --- inconclusive cells: not decided, never a regression by itself, never a pass ----------

UNDECIDED_REASON = "3/3 calls set up (...): too few trials to say works; 13 more trials ..."


def test_inconclusive_run_over_a_known_good_cell_is_not_decided() -> None:
    new = new_cell("inconclusive", ci=(0.44, 1.0), reason=UNDECIDED_REASON)
    change = compare_cell(old_cell(), new, 0.3)
    assert change is not None and change.status == "not-decided" and not change.fails
    assert change.reasons == [
        f"verdict works -> inconclusive, not decided (this run: {UNDECIDED_REASON})"
    ]


def test_inconclusive_baseline_is_not_decided_whatever_the_run_says() -> None:
    old = old_cell("inconclusive", ci=(0.44, 1.0)).model_copy(update={"reason": "too thin"})
    for verdict in ("works", "signalling-blocked", "inconclusive"):
        change = compare_cell(old, new_cell(verdict, ci=(0.44, 1.0)), 0.3)
        assert change is not None and change.status == "not-decided" and not change.fails
        assert "baseline: too thin" in change.reasons[0]


def test_inconclusive_with_a_cssr_drop_the_data_back_still_regresses() -> None:
    new = new_cell("inconclusive", cssr=0.0, ci=(0.0, 0.56), mos=None)
    change = compare_cell(old_cell(ci=(0.81, 1.0)), new, 0.3)
    assert change is not None and change.fails
    assert change.reasons == ["CSSR 1.00 -> 0.00, 95% intervals do not overlap"]


def test_a_baseline_without_reasons_is_still_read(tmp_path) -> None:
    path = tmp_path / "old.json"
    cell = {"censor": "c", "tool": "t", "app": "sip", "verdict": "works", "cssr": 1.0,
            "cssr_ci": [0.8, 1.0], "mos_median": 4.4, "trials": 16}  # fmt: skip
    path.write_text(json.dumps({"baseline_version": 1, "scenario": "s", "cells": [cell]}))
    assert load_baseline(path).cells[0].reason == ""


def test_cli_gate_reports_an_inconclusive_cell_as_not_decided(tmp_path, capsys) -> None:
    good = write_run(tmp_path / "good", unit_results())
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(good), "-o", str(baseline)]) == EXIT_OK
    # Two trials of the cell instead of four: 2/2 = [0.34, 1] cannot say works (>= 0.5).
    thin = [r for r in unit_results() if not (r.cell == CELL and r.trial >= 2)]
    run = write_run(tmp_path / "thin", thin)
    capsys.readouterr()
    assert main(["gate", str(run), "--baseline", str(baseline)]) == EXIT_OK
    out = capsys.readouterr().out
    assert (
        "not-decided throttle / shadowsocks / sip: verdict works -> inconclusive, not decided "
        "(this run: 2/2 calls set up"
    ) in out
    assert "2 more trials like these would decide works" in out
    assert "1 cell(s) not decided: neither a regression nor a pass" in out
    assert "gate passed: no cell regressed, 1 cell(s) not decided" in out
