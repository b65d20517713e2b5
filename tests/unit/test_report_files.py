"""`gatecrash report`: re-scoring a run directory that may be damaged, summary.json against
its published schema, and JUnit XML a CI system can read.

The helpers here build run directories from TrialResult objects; the other
test_report_* modules import them.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
from junitparser import Failure, JUnitXml

from harness.cli import EXIT_BAD_INPUT, EXIT_EXPECT_FAILED, EXIT_OK, main
from harness.report.junit import write_junit
from harness.report.loading import read_results_tolerant
from harness.report.schema import summary_schema
from harness.report.summary import build_summary
from harness.results import CallMetrics, DirectionStats, MessageMetrics, TrialResult
from harness.scenario import Scenario, parse_scenario

SCENARIO = """\
name: unit
trials: 4
call_seconds: 1
apps: [sip, xmpp]
tools: [direct, shadowsocks]
censors:
  open: []
  throttle: [{type: udp_throttle, rate: 16kbit}]
# 4 trials: Wilson 4/4 = [0.51, 1], 0/4 = [0, 0.49]
thresholds: {works_min_cssr_lower: 0.5, blocked_max_cssr_upper: 0.5}
expect:
  - {censor: open, tool: direct, app: sip, verdict: works}
  - {censor: throttle, tool: direct, app: sip, verdict: works}
"""


def call_trial(
    censor: str, tool: str, trial: int, ok: bool = True, mos: float = 4.4, run_id: str = "r1"
) -> TrialResult:
    """A SIP trial: set up with the given MOS, or a timeout before setup."""
    stats = DirectionStats(sent=50, received=50, expected=50, jitter_ms=0.5)
    r = 93.0 if mos >= 4.3 else 40.0 if mos >= 2 else 0.0
    call = (
        CallMetrics(registered=True, setup_ok=True, final_status=200, pdd_ms=2.0, setup_ms=3.0,
                    media_s=1.0, up=stats, down=stats, r_factor=r, mos=mos)
        if ok
        else CallMetrics(registered=True)
    )  # fmt: skip
    return TrialResult(
        run_id=run_id, scenario="unit", censor=censor, tool=tool, app="sip", trial=trial,
        started_at="2026-11-28T00:00:00+00:00", outcome="ok" if ok else "timeout", call=call,
    )  # fmt: skip


def chat_trial(censor: str, tool: str, trial: int, delivered: int = 10) -> TrialResult:
    message = MessageMetrics(connected=True, connect_ms=80.0, sent=10, delivered=delivered)
    return TrialResult(
        run_id="r1", scenario="unit", censor=censor, tool=tool, app="xmpp", trial=trial,
        started_at="2026-11-28T00:00:00+00:00", outcome="ok", message=message,
    )  # fmt: skip


def unit_results(throttle_ok: int = 0, trials: int = 4) -> list[TrialResult]:
    """Every cell of SCENARIO: open works; under the throttle direct SIP sets up
    `throttle_ok` of `trials` calls, shadowsocks all of them; chat is untouched."""
    out = []
    for censor in ("open", "throttle"):
        for tool in ("direct", "shadowsocks"):
            for n in range(trials):
                ok = censor == "open" or tool == "shadowsocks" or n < throttle_ok
                out.append(call_trial(censor, tool, n, ok=ok))
            out.extend(chat_trial(censor, tool, n) for n in range(trials))
    return out


def unit_scenario() -> Scenario:
    return parse_scenario(SCENARIO)


def write_run(directory: Path, results: list[TrialResult], scenario: Scenario | None = None):
    directory.mkdir(parents=True, exist_ok=True)
    scenario = scenario or unit_scenario()
    (directory / "scenario.json").write_text(scenario.model_dump_json(indent=2))
    lines = "".join(r.model_dump_json() + "\n" for r in results)
    (directory / "results.jsonl").write_text(lines)
    return directory


def test_report_rescores_and_writes_summary_and_junit(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", unit_results())
    junit = tmp_path / "junit.xml"
    assert main(["report", str(run), "--junit", str(junit)]) == EXIT_EXPECT_FAILED
    summary = json.loads((run / "summary.json").read_text())
    cells = {(c["censor"], c["tool"], c["app"]): c for c in summary["cells"]}
    assert cells[("open", "direct", "sip")]["verdict"] == "works"
    assert cells[("throttle", "direct", "sip")]["verdict"] == "signalling-blocked"
    assert [e["met"] for e in summary["expectations"]] == [True, False]
    out = capsys.readouterr().out
    assert "throttle / direct / sip" in out and "FAILED" in out
    assert junit.exists()


def test_report_json_option_and_exit_0_when_expectations_hold(tmp_path) -> None:
    run = write_run(tmp_path / "run", unit_results(throttle_ok=4))
    target = tmp_path / "elsewhere.json"
    assert main(["report", str(run), "--json", str(target)]) == EXIT_OK
    assert json.loads(target.read_text())["scenario"] == "unit"
    assert not (run / "summary.json").exists()


def test_report_missing_dir_is_a_clear_error(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path / "nope")]) == EXIT_BAD_INPUT
    assert "no such results directory" in capsys.readouterr().err


def test_report_dir_without_scenario_json(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", unit_results())
    (run / "scenario.json").unlink()
    assert main(["report", str(run)]) == EXIT_BAD_INPUT
    assert "scenario.json: missing" in capsys.readouterr().err


def test_report_empty_results_is_a_clear_error(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", [])
    assert main(["report", str(run)]) == EXIT_BAD_INPUT
    assert "no trial results to score" in capsys.readouterr().err


def test_truncated_line_warns_with_file_and_line_and_keeps_the_rest(tmp_path, capsys) -> None:
    results = unit_results()
    run = write_run(tmp_path / "run", results)
    path = run / "results.jsonl"
    whole = path.read_text()
    path.write_text(whole + results[0].model_dump_json()[:40])  # killed mid-write
    line = len(results) + 1
    read = read_results_tolerant(path)
    assert len(read.results) == len(results)
    assert read.warnings == [f"{path}:{line}: line is cut short (run stopped mid-write?); skipped"]
    assert read.complete_bytes == len(whole.encode())
    assert main(["report", str(run)]) == EXIT_EXPECT_FAILED
    assert f"{path}:{line}: line is cut short" in capsys.readouterr().err


def test_garbled_line_in_the_middle_is_skipped(tmp_path) -> None:
    results = unit_results()
    run = write_run(tmp_path / "run", results)
    path = run / "results.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    lines[3] = lines[3][:25] + "\n"
    path.write_text("".join(lines))
    read = read_results_tolerant(path)
    assert len(read.results) == len(results) - 1
    assert read.warnings == [f"{path}:4: line is not JSON; skipped"]


def test_other_schema_version_lines_are_counted_and_skipped(tmp_path, capsys) -> None:
    results = unit_results()
    run = write_run(tmp_path / "run", results)
    path = run / "results.jsonl"
    old = [json.loads(r.model_dump_json()) | {"schema_version": 0} for r in results[:3]]
    path.write_text(path.read_text() + "".join(json.dumps(o) + "\n" for o in old))
    read = read_results_tolerant(path)
    assert len(read.results) == len(results)
    assert len(read.warnings) == 1 and "skipped 3 lines of schema_version 0" in read.warnings[0]
    assert main(["report", str(run)]) == EXIT_EXPECT_FAILED
    assert "skipped 3 lines" in capsys.readouterr().err


def test_only_other_schema_versions_is_an_error(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", [])
    old = json.loads(call_trial("open", "direct", 0).model_dump_json()) | {"schema_version": 9}
    (run / "results.jsonl").write_text(json.dumps(old) + "\n")
    assert main(["report", str(run)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "no trial results to score" in err and "schema_version 9" in err


def test_summary_validates_against_the_published_schema() -> None:
    built = build_summary(unit_scenario(), "r1", "netns", unit_results(throttle_ok=1))
    summary = built.model_dump(mode="json")
    schema = summary_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())
    validator.validate(summary)
    assert summary["schema_version"] == 2


def test_schema_documents_every_field_a_summary_has() -> None:
    """Version 1 tolerates unknown fields for consumers; the schema itself must not lag."""
    summary = build_summary(unit_scenario(), "r1", "netns", unit_results()).model_dump(mode="json")
    schema = summary_schema()
    assert set(summary) <= set(schema["properties"])
    assert set(summary["thresholds"]) <= set(schema["properties"]["thresholds"]["properties"])
    for cell in summary["cells"]:
        assert set(cell) <= set(schema["$defs"]["cell"]["properties"])
    for exp in summary["expectations"]:
        assert set(exp) <= set(schema["$defs"]["expectation"]["properties"])


def test_schema_rejects_a_wrong_summary() -> None:
    summary = build_summary(unit_scenario(), "r1", "netns", unit_results()).model_dump(mode="json")
    summary["cells"][0]["verdict"] = "great"
    errors = list(jsonschema.Draft202012Validator(summary_schema()).iter_errors(summary))
    assert errors


def test_junit_one_testcase_per_cell_failure_on_unmet_expectation(tmp_path) -> None:
    summary = build_summary(unit_scenario(), "r1", "netns", unit_results())
    path = tmp_path / "junit.xml"
    write_junit(path, summary)
    xml = JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert len(suites) == 1
    suite = suites[0]
    assert suite.name == "unit"
    assert suite.tests == 8 and suite.failures == 1 and suite.errors == 0
    cases = {case.name: case for case in suite}
    assert len(cases) == 8
    assert all(case.classname == "unit" for case in suite)
    failed = cases["throttle / direct / sip"]
    assert not failed.is_passed
    failure = failed.result[0]
    assert isinstance(failure, Failure)
    assert failure.message == "expected works, got signalling-blocked"
    assert "reason: 0/4 calls set up" in failure.text
    assert "outcomes: timeout=4" in failure.text
    passed = cases["open / shadowsocks / xmpp"]  # no expectation: passes, verdict shown
    assert passed.is_passed and "verdict: works" in passed.system_out
    assert cases["open / direct / sip"].is_passed  # expectation met


def test_junit_expectation_of_a_cell_that_did_not_run_fails(tmp_path) -> None:
    results = [r for r in unit_results() if r.censor == "open"]
    summary = build_summary(unit_scenario(), "r1", "netns", results)
    path = tmp_path / "junit.xml"
    write_junit(path, summary)
    suite = next(iter(JUnitXml.fromfile(str(path))))
    assert suite.tests == 5 and suite.failures == 1
    missing = next(case for case in suite if case.name == "throttle / direct / sip")
    assert "got no trials" in missing.result[0].message


def test_the_summary_names_each_tool_column_s_versions(tmp_path) -> None:
    scenario = unit_scenario()
    trials = [call_trial("open", "direct", 0), call_trial("open", "shadowsocks", 0)]
    trials[1].tool_version = "shadowsocks-libev 3.3.5 (own build /b/ss)"
    summary = build_summary(scenario, "r", "netns", trials).model_dump(mode="json")
    assert summary["tool_versions"] == {
        "direct": [], "shadowsocks": ["shadowsocks-libev 3.3.5 (own build /b/ss)"]
    }  # fmt: skip
    jsonschema.validate(summary, summary_schema())
