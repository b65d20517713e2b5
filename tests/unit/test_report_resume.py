"""`gatecrash run --resume DIR`: only the same suite may continue a run; recorded trials are
skipped, a line cut short by a killed run is dropped, new trials are appended."""

from __future__ import annotations

from pathlib import Path

import pytest

import harness.runner as runner_module
from harness.cli import EXIT_BAD_INPUT, main
from harness.report.loading import read_results_tolerant
from harness.runner import ResumeError, Runner, check_resumable, resume_problems
from harness.scenario import parse_scenario
from tests.unit.test_report_files import SCENARIO, call_trial, chat_trial, unit_scenario, write_run


def test_same_suite_may_resume_with_more_trials() -> None:
    more = unit_scenario()
    more.trials = 10
    more.expect = []
    assert resume_problems(unit_scenario(), more) == []


def test_other_cells_techniques_or_call_length_may_not() -> None:
    without_expect = SCENARIO.split("expect:")[0]  # they name shadowsocks cells
    other = parse_scenario(
        without_expect.replace("tools: [direct, shadowsocks]", "tools: [direct]")
        .replace("rate: 16kbit", "rate: 8kbit")
        .replace("call_seconds: 1", "call_seconds: 5")
    )
    problems = resume_problems(unit_scenario(), other)
    assert problems[0].startswith("the cells differ: only in the saved run: open / shadowsocks")
    assert "censor 'throttle' has other techniques" in problems[1]
    assert "call_seconds differs: saved run 1.0, given 5.0" in problems[2]


def scenario_file(tmp_path: Path, text: str = SCENARIO) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return str(path)


def test_cli_resume_of_another_suite_exits_2_and_touches_nothing(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", [call_trial("open", "direct", 0)])
    before = (run / "results.jsonl").read_bytes()
    other = scenario_file(tmp_path, SCENARIO.replace("apps: [sip, xmpp]", "apps: [sip]"))
    assert main(["run", other, "--resume", str(run)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "does not match the run being resumed" in err and "open / direct / xmpp" in err
    assert (run / "results.jsonl").read_bytes() == before


def test_cli_resume_without_a_run_exits_2(tmp_path, capsys) -> None:
    assert main(["run", scenario_file(tmp_path), "--resume", str(tmp_path / "x")]) == 2
    assert "no run to resume" in capsys.readouterr().err


def test_cli_resume_with_another_out_exits_2(tmp_path, capsys) -> None:
    run = write_run(tmp_path / "run", [call_trial("open", "direct", 0)])
    argv = ["run", scenario_file(tmp_path), "--resume", str(run), "--out", str(tmp_path / "o")]
    assert main(argv) == EXIT_BAD_INPUT
    assert "--resume DIR writes to DIR" in capsys.readouterr().err


def test_runner_resume_skips_recorded_trials_and_appends(tmp_path, monkeypatch) -> None:
    """No namespaces: run_trial is replaced by a recorder, the loop and file are real."""
    scenario = unit_scenario()
    scenario.trials = 2
    recorded = [call_trial("open", "direct", 0), chat_trial("open", "direct", 1)]
    run = write_run(tmp_path / "run", recorded, scenario)
    path = run / "results.jsonl"
    half = call_trial("open", "direct", 1).model_dump_json()[:30]
    path.write_text(path.read_text() + half)  # killed while writing open/direct/sip #1

    ran: list[tuple[str, str, str, int]] = []

    def fake_trial(self, censor, tool, app, trial, ca, attempt=0):
        ran.append((censor, tool, app, trial))
        if app == "sip":
            return call_trial(censor, tool, trial, run_id=self.run_id)
        return chat_trial(censor, tool, trial)

    monkeypatch.setattr(runner_module, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(Runner, "preflight", lambda self: None)
    monkeypatch.setattr(Runner, "run_trial", fake_trial)
    runner = Runner(scenario, run, resume=True)
    results = runner.run()

    assert len(ran) == 16 - 2
    assert ("open", "direct", "sip", 0) not in ran and ("open", "direct", "xmpp", 1) not in ran
    assert ("open", "direct", "sip", 1) in ran  # the half-written trial runs again
    assert len(results) == 16 and len({r.key for r in results}) == 16
    assert runner.resume_warnings and "cut short" in runner.resume_warnings[0]
    read = read_results_tolerant(path)
    assert read.warnings == [] and len(read.results) == 16
    assert path.read_text().endswith("\n")


def test_runner_resume_keeps_a_whole_record_missing_its_newline(tmp_path, monkeypatch) -> None:
    scenario = unit_scenario()
    scenario.trials = 1
    run = write_run(tmp_path / "run", [call_trial("open", "direct", 0)], scenario)
    path = run / "results.jsonl"
    path.write_text(path.read_text().rstrip("\n"))
    monkeypatch.setattr(runner_module, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(Runner, "preflight", lambda self: None)
    monkeypatch.setattr(
        Runner,
        "run_trial",
        lambda self, c, t, a, n, ca, attempt=0: (
            call_trial(c, t, n) if a == "sip" else chat_trial(c, t, n)
        ),
    )
    Runner(scenario, run, resume=True).run()
    read = read_results_tolerant(path)
    assert read.warnings == [] and len(read.results) == 8


def test_runner_resume_refuses_another_suite(tmp_path) -> None:
    run = write_run(tmp_path / "run", [call_trial("open", "direct", 0)])
    other = parse_scenario(SCENARIO.replace("call_seconds: 1", "call_seconds: 2"))
    with pytest.raises(ResumeError, match="call_seconds differs"):
        check_resumable(other, run)
    with pytest.raises(ResumeError, match="call_seconds differs"):
        Runner(other, run, resume=True).run()
