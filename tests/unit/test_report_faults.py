"""Harness faults and undecided cells in every report: summary.json v2 (and v1 files still
read), the terminal table, JUnit XML, the HTML page, the exit code and the pytest plugin.

Run directories are built from TrialResult records as the runner writes them: a retried
trial has one line per attempt.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
from junitparser import Error, Failure, JUnitXml

from harness.cli import EXIT_EXPECT_FAILED, EXIT_HARNESS_FAULT, EXIT_OK, main
from harness.report.baseline import compare, load_baseline, make_baseline
from harness.report.junit import write_junit
from harness.report.loading import load_run, read_results_tolerant
from harness.report.schema import summary_schema
from harness.report.summary import build_summary, write_summary
from harness.report.summary_model import load_summary
from harness.results import Fault, TrialResult
from harness.scenario import parse_scenario
from tests.unit.test_report_files import (
    SCENARIO,
    call_trial,
    unit_results,
    unit_scenario,
    write_run,
)

BROKEN = ("open", "shadowsocks", "sip")
REPO = Path(__file__).resolve().parents[2]


def fault(censor: str, tool: str, trial: int, attempt: int = 0, kind: str = "tool-start"):
    """An attempt that ended in a harness fault (the tool's server side exited)."""
    return TrialResult(
        run_id="r1", scenario="unit", censor=censor, tool=tool, app="sip", trial=trial,
        started_at="2026-11-28T00:00:00+00:00", outcome="harness-fault", attempt=attempt,
        error="ss-server exited", fault=Fault(phase="tool", kind=kind, detail="ss-server exited"),
    )  # fmt: skip


def with_broken_cell() -> list[TrialResult]:
    """unit_results() where trials 0 and 1 of BROKEN ended in faults (each retried once),
    and trial 2 of open/direct/sip set up on its retry."""
    results = [r for r in unit_results() if not (r.cell == BROKEN and r.trial < 2)]
    for trial in (0, 1):
        results += [fault(*BROKEN[:2], trial, attempt) for attempt in (0, 1)]
    retried = next(i for i, r in enumerate(results) if r.key == ("open", "direct", "sip", 2))
    results[retried].attempt = 1
    results.insert(retried, fault("open", "direct", 2, kind="server-not-ready"))
    return results


def cells_of(summary: dict) -> dict:
    return {(c["censor"], c["tool"], c["app"]): c for c in summary["cells"]}


# ---------------------------------------------------------------- summary.json


def test_summary_v2_counts_faults_per_cell_and_for_the_run() -> None:
    built = build_summary(unit_scenario(), "r1", "netns", with_broken_cell())
    summary = built.model_dump(mode="json")
    cells = cells_of(summary)
    broken = cells[BROKEN]
    assert broken["verdict"] == "invalid" and "tool-start in tool" in broken["reason"]
    assert (broken["trials"], broken["valid_trials"], broken["faults"]) == (4, 2, 2)
    assert broken["fault_attempts"] == 4 and broken["fault_kinds"] == {"tool-start": 4}
    retried = cells[("open", "direct", "sip")]
    assert retried["verdict"] == "works" and retried["valid_trials"] == 4
    assert (retried["faults"], retried["fault_attempts"]) == (0, 1)
    assert summary["faults"] == {
        "attempts": 5,
        "trials": 2,
        "by_kind": {"tool-start": 4, "server-not-ready": 1},
    }
    assert summary["thresholds"]["max_fault_share"] == 0.2
    validator = jsonschema.Draft202012Validator(
        summary_schema(2), format_checker=jsonschema.FormatChecker()
    )
    validator.validate(summary)


def test_a_run_without_faults_says_so() -> None:
    summary = build_summary(unit_scenario(), "r1", "netns", unit_results()).model_dump(mode="json")
    assert summary["faults"] == {"attempts": 0, "trials": 0, "by_kind": {}}
    assert all(c["faults"] == 0 and c["fault_kinds"] == {} for c in summary["cells"])


def v1_summary() -> dict:
    """A summary.json as gatecrash wrote it before version 2 (no fault fields)."""
    summary = build_summary(unit_scenario(), "r1", "docker", unit_results()).model_dump(mode="json")
    summary["schema_version"] = 1
    del summary["faults"], summary["thresholds"]["max_fault_share"]
    for cell in summary["cells"]:
        for key in ("valid_trials", "faults", "fault_attempts", "fault_kinds"):
            del cell[key]
    return summary


def test_the_v1_schema_is_still_published_and_v1_summaries_follow_it() -> None:
    v1, v2 = summary_schema(1), summary_schema(2)
    assert v1["properties"]["schema_version"]["const"] == 1
    assert "inconclusive" not in v1["$defs"]["verdict"]["enum"]
    assert "inconclusive" in v2["$defs"]["verdict"]["enum"]
    jsonschema.Draft202012Validator(v1).validate(v1_summary())
    errors = jsonschema.Draft202012Validator(v2).iter_errors(v1_summary())
    assert any("faults" in e.message for e in errors)  # v2 requires what v1 lacks


def test_a_v1_summary_is_still_read_for_the_backend_and_as_a_baseline(tmp_path) -> None:
    run = write_run(tmp_path / "run", unit_results())
    (run / "summary.json").write_text(json.dumps(v1_summary()))
    assert load_run(run).backend == "docker"
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(make_baseline(load_summary(run / "summary.json"))))
    baseline = load_baseline(path)
    now = build_summary(unit_scenario(), "r1", "netns", unit_results())
    assert compare(baseline, now, 0.3) == []


def test_v1_results_lines_are_still_read_and_scored(tmp_path) -> None:
    lines = []
    for result in unit_results(throttle_ok=4):
        record = json.loads(result.model_dump_json())
        record["schema_version"] = 1
        del record["fault"], record["attempt"]
        lines.append(json.dumps(record) + "\n")
    run = write_run(tmp_path / "run", [])
    (run / "results.jsonl").write_text("".join(lines))
    read = read_results_tolerant(run / "results.jsonl")
    assert len(read.results) == len(lines) and not read.warnings
    assert main(["report", str(run)]) == EXIT_OK
    summary = json.loads((run / "summary.json").read_text())
    assert summary["schema_version"] == 2 and summary["faults"]["attempts"] == 0
    assert cells_of(summary)[("open", "direct", "sip")]["verdict"] == "works"


# ---------------------------------------------------------------- exit code, terminal


def test_report_exits_3_when_a_cell_is_invalid_before_unmet_expectations(tmp_path) -> None:
    run = write_run(tmp_path / "run", with_broken_cell())
    # The throttle/direct/sip expectation fails too (0/4): the invalid cell decides the code.
    assert main(["report", str(run)]) == EXIT_HARNESS_FAULT == 3
    fine = write_run(tmp_path / "fine", with_broken_cell())
    scenario = parse_scenario(SCENARIO.replace("  - {censor: throttle, tool: direct, app: sip, "
                                               "verdict: works}\n", ""))  # fmt: skip
    (fine / "scenario.json").write_text(scenario.model_dump_json())
    assert main(["report", str(fine)]) == EXIT_HARNESS_FAULT


def test_one_retried_fault_leaves_the_exit_code_to_the_expectations(tmp_path) -> None:
    results = [r for r in unit_results(throttle_ok=4) if r.key != ("open", "direct", "sip", 0)]
    results += [fault("open", "direct", 0), call_trial("open", "direct", 0)]
    results[-1].attempt = 1
    assert main(["report", str(write_run(tmp_path / "run", results))]) == EXIT_OK


def test_terminal_shows_faults_apart_from_the_verdicts(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", with_broken_cell())
    main(["report", str(run)])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if "open" in line and "shadowsocks" in line
               and "invalid" in line)  # fmt: skip
    assert row.rstrip(" │|").endswith("2/4")  # the faults column, apart from the verdict
    assert "faults: trials not scored / attempts that ended in a harness fault" in out
    assert (
        "harness faults (the harness's own failures, never censorship): 5 attempt(s) "
        "(tool-start 4, server-not-ready 1); 2 trial(s) ended in one and were not scored"
    ) in out
    assert "open / shadowsocks / sip: 2 of 4 trials ended in a harness fault" in out


# ---------------------------------------------------------------- JUnit


def test_junit_invalid_cell_is_an_error_not_a_failure(tmp_path) -> None:
    summary = build_summary(unit_scenario(), "r1", "netns", with_broken_cell())
    path = tmp_path / "junit.xml"
    write_junit(path, summary)
    suite = next(iter(JUnitXml.fromfile(str(path))))
    assert suite.tests == 8 and suite.errors == 1 and suite.failures == 1
    cases = {case.name: case for case in suite}
    (error,) = cases["open / shadowsocks / sip"].result
    assert isinstance(error, Error) and error.type == "harness-fault"
    assert error.message.startswith("invalid: 2 of 4 trials ended in a harness fault")
    assert "harness faults: 2 trial(s) not scored, 4 attempt(s) (tool-start=4)" in error.text
    (failure,) = cases["throttle / direct / sip"].result  # the unmet expectation stays
    assert isinstance(failure, Failure)


def test_junit_inconclusive_fails_a_works_expectation_with_its_reason(tmp_path) -> None:
    scenario = parse_scenario(SCENARIO.replace("thresholds: {works_min_cssr_lower: 0.5, "
                                               "blocked_max_cssr_upper: 0.5}\n", ""))  # fmt: skip
    summary = build_summary(scenario, "r1", "netns", unit_results(throttle_ok=4))
    path = tmp_path / "junit.xml"
    write_junit(path, summary)
    suite = next(iter(JUnitXml.fromfile(str(path))))
    cases = {case.name: case for case in suite}
    (failure,) = cases["open / direct / sip"].result
    assert isinstance(failure, Failure)
    assert failure.message == "expected works, got inconclusive"
    assert "12 more trials like these would decide works" in failure.text
    assert suite.errors == 0
    observed = cases["open / shadowsocks / xmpp"]  # no expectation: an observation
    assert observed.is_passed and "verdict: inconclusive" in observed.system_out


# ---------------------------------------------------------------- HTML


def test_html_lists_every_fault_attempt_apart_from_the_verdicts(tmp_path) -> None:
    run = write_run(tmp_path / "run", with_broken_cell())
    main(["report", str(run)])
    page = (run / "report.html").read_text()
    section = page.split('<h2 id="harness-faults">Harness faults</h2>', 1)[1].split("<h2>")[0]
    assert "5 attempt(s) ended in a harness fault (tool-start 4, server-not-ready 1)" in section
    assert section.count("<td>open / shadowsocks / sip</td>") == 4
    assert "ss-server exited" in section and "<td>tool</td><td>tool-start</td>" in section
    assert 'class="flag faults">harness faults 2/4</span>' in page
    assert "trial 0 (attempt 1): <b>harness-fault</b> · tool-start in tool" in page
    assert "32 trials (35 attempts)" in page  # 30 records of one attempt, 5 faults
    assert 'data-verdict="invalid"' in page


# ---------------------------------------------------------------- pytest plugin

PLUGIN_CONFTEST = '''
"""Stand-in for the scenario run: the summary of records built in the test."""
from pathlib import Path

from harness import pytest_plugin
from harness.report.summary_model import load_summary

SUMMARY = load_summary(Path(__file__).with_name("summary.json"))
pytest_plugin.ScenarioFile.summary = lambda self: SUMMARY
'''


def test_pytest_plugin_reports_an_invalid_cell_as_an_error(tmp_path) -> None:
    scenario = SCENARIO + "  - {censor: open, tool: shadowsocks, app: sip, verdict: works}\n"
    summary = build_summary(parse_scenario(scenario), "r1", "netns", with_broken_cell())
    write_summary(tmp_path / "summary.json", summary)
    (tmp_path / "conftest.py").write_text(PLUGIN_CONFTEST)
    (tmp_path / "unit.yaml").write_text(scenario)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "unit.yaml", "-p", "no:cacheprovider", "-q",
         f"--junitxml={junit}", "--rootdir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 1 passed, 1 error" in proc.stdout, proc.stdout
    assert "harness fault, cell not measured: 2 of 4 trials ended" in proc.stdout
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    kinds = {case.name: [type(r).__name__ for r in case.result] for case in suite}
    assert kinds == {
        "open/direct/sip": [],
        "throttle/direct/sip": ["Failure"],
        "open/shadowsocks/sip": ["Error"],
    }


def test_cli_exit_codes_are_documented() -> None:
    import harness.cli

    doc = harness.cli.__doc__ or ""
    assert "3 (`run`, `report`) a cell is `invalid`" in doc and "130 interrupted" in doc
    readme = (REPO / "README.md").read_text()
    assert "`3`" in readme and "`130`" in readme and "inconclusive" in readme
    assert EXIT_EXPECT_FAILED == 1
