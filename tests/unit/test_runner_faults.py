"""The runner's loop without namespaces: attempts are stand-ins for run_trial (named so),
the worker threads, retries, results file and stop logic are the real ones."""

from __future__ import annotations

import _thread
import json
import os
import signal
import threading
import time

import pytest

import harness.runner as runner_module
from harness.agent_io import work_and_report
from harness.faults import InjectedFault, fault_from_exception, left_behind, tool_failure_is_fault
from harness.paths import OutsideOutDir
from harness.report.loading import read_results_tolerant
from harness.results import Fault, TrialResult, final_attempts
from harness.runner import Interrupted, Runner
from harness.topology.base import AddressInUse
from harness.topology.process import ProcessFailed
from tests.unit.test_report_files import call_trial, chat_trial, unit_scenario


def stand_in(result_of):
    """A run_trial stand-in from a function (key, attempt) -> TrialResult."""

    def run_trial(self, censor, tool, app, trial, ca, attempt=0):
        result = result_of((censor, tool, app, trial), attempt)
        result.attempt = attempt
        return result

    return run_trial


def ok_trial(key) -> TrialResult:
    censor, tool, app, trial = key
    return call_trial(censor, tool, trial) if app == "sip" else chat_trial(censor, tool, trial)


def faulty(key) -> TrialResult:
    result = ok_trial(key)
    result.outcome, result.call, result.message = "harness-fault", None, None
    result.fault = Fault(phase="servers", kind="server-not-ready", detail="kamailio exited")
    return result


@pytest.fixture
def no_setup(monkeypatch, tmp_path):
    monkeypatch.setattr(runner_module, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(Runner, "preflight", lambda self: None)


def test_a_fault_is_retried_and_every_attempt_recorded(no_setup, monkeypatch, tmp_path) -> None:
    scenario = unit_scenario()
    scenario.trials = 1
    bad = ("open", "direct", "sip", 0)
    monkeypatch.setattr(
        Runner,
        "run_trial",
        stand_in(lambda key, n: faulty(key) if key == bad and n < 2 else ok_trial(key)),
    )
    results = Runner(scenario, tmp_path / "out", retries=2).run()
    attempts = [r for r in results if r.key == bad]
    assert [(r.attempt, r.outcome) for r in attempts] == [
        (0, "harness-fault"), (1, "harness-fault"), (2, "ok")
    ]  # fmt: skip
    on_disk = read_results_tolerant(tmp_path / "out" / "results.jsonl").results
    assert len(on_disk) == len(results) == 8 + 2
    final = {r.key: r for r in final_attempts(on_disk)}
    assert final[bad].outcome == "ok" and final[bad].attempt == 2


def test_retries_are_bounded(no_setup, monkeypatch, tmp_path) -> None:
    scenario = unit_scenario()
    scenario.trials = 1
    monkeypatch.setattr(Runner, "run_trial", stand_in(lambda key, n: faulty(key)))
    results = Runner(scenario, tmp_path / "out", retries=1).run()
    assert len(results) == 8 * 2
    assert all(r.is_fault for r in final_attempts(results))


def test_resume_tries_a_faulted_trial_again_with_the_next_attempt(
    no_setup, monkeypatch, tmp_path
) -> None:
    scenario = unit_scenario()
    scenario.trials = 1
    monkeypatch.setattr(Runner, "run_trial", stand_in(lambda key, n: faulty(key)))
    Runner(scenario, tmp_path / "out", retries=0).run()
    monkeypatch.setattr(Runner, "run_trial", stand_in(lambda key, n: ok_trial(key)))
    again = Runner(scenario, tmp_path / "out", resume=True, retries=0).run()
    fresh = [r for r in again if not r.is_fault]
    assert len(fresh) == 8 and {r.attempt for r in fresh} == {1}


def test_jobs_run_trials_side_by_side_and_record_each_once(no_setup, monkeypatch, tmp_path) -> None:
    scenario = unit_scenario()
    scenario.trials = 3
    lock, running, peak = threading.Lock(), [0], [0]

    def slow(key, attempt):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return ok_trial(key)

    monkeypatch.setattr(Runner, "run_trial", stand_in(slow))
    results = Runner(scenario, tmp_path / "out", jobs=4).run()
    assert peak[0] == 4
    keys = [r.key for r in read_results_tolerant(tmp_path / "out" / "results.jsonl").results]
    assert len(keys) == len(set(keys)) == 8 * 3
    assert sorted(keys) == sorted(r.key for r in results)


def test_only_runs_the_given_trials(no_setup, monkeypatch, tmp_path) -> None:
    scenario = unit_scenario()
    scenario.trials = 2
    monkeypatch.setattr(Runner, "run_trial", stand_in(lambda key, n: ok_trial(key)))
    only = [("open", "direct", "sip", 1), ("throttle", "shadowsocks", "xmpp", 0)]
    results = Runner(scenario, tmp_path / "out", only=only).run()
    assert sorted(r.key for r in results) == sorted(only)


@pytest.mark.parametrize(
    "stop", [_thread.interrupt_main, lambda: os.kill(os.getpid(), signal.SIGTERM)],
    ids=["ctrl-c", "sigterm"],
)  # fmt: skip
def test_a_stop_ends_running_trials_and_records_none_of_them(
    no_setup, monkeypatch, tmp_path, stop
) -> None:
    """Ctrl-C or SIGTERM: workers see the stop at their next phase boundary."""
    scenario = unit_scenario()
    scenario.trials = 2
    started = threading.Event()

    def waits_for_stop(self, censor, tool, app, trial, ca, attempt=0):
        started.set()
        while not self._stopping.is_set():
            time.sleep(0.01)
        raise Interrupted("the run is stopping")  # what the next phase boundary does

    monkeypatch.setattr(Runner, "run_trial", waits_for_stop)
    runner = Runner(scenario, tmp_path / "out", jobs=3)
    threading.Timer(0.3, stop).start()
    begun = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        runner.run()
    assert started.is_set() and time.monotonic() - begun < 5
    path = tmp_path / "out" / "results.jsonl"
    assert not path.exists() or path.read_text() == ""


def test_runner_refuses_nonsense_jobs_and_retries(tmp_path) -> None:
    with pytest.raises(ValueError, match="jobs >= 1"):
        Runner(unit_scenario(), tmp_path, jobs=0)
    with pytest.raises(ValueError, match="retries >= 0"):
        Runner(unit_scenario(), tmp_path, retries=-1)


def test_attempts_get_directories_of_their_own(tmp_path) -> None:
    runner = Runner(unit_scenario(), tmp_path)
    first = runner.trial_dir("open", "direct", "sip", 3)
    retry = runner.trial_dir("open", "direct", "sip", 3, attempt=1)
    assert first.name == "3" and retry.name == "3.attempt1" and first.parent == retry.parent
    with pytest.raises(OutsideOutDir):
        runner.trial_dir("..", "..", "..", 3)  # labels are checked on load; this is the 2nd line


@pytest.mark.parametrize(
    ("phase", "exc", "kind"),
    [
        ("topology", RuntimeError("ip: RTNETLINK answers: File exists"), "topology-setup"),
        ("topology", AddressInUse("10.77.3.0/24 is held"), "address-block-taken"),
        ("servers", ProcessFailed("kamailio exited with 255"), "server-not-ready"),
        ("servers", OSError("no such file"), "server-setup"),
        ("censor", RuntimeError("iptables-restore: line 3 failed"), "censor-setup"),
        ("app", KeyError("call"), "app-exception"),
        ("tool", InjectedFault("test"), "injected-tool"),
    ],
)
def test_exceptions_become_faults_of_their_phase(phase, exc, kind) -> None:
    fault = fault_from_exception(phase, exc)
    assert (fault.phase, fault.kind) == (phase, kind)
    assert type(exc).__name__ in fault.detail


def test_a_tool_failure_is_a_fault_only_when_nothing_could_have_censored_it() -> None:
    assert tool_failure_is_fault(has_techniques=False, client_packets=None)
    assert tool_failure_is_fault(has_techniques=True, client_packets=0)
    assert not tool_failure_is_fault(has_techniques=True, client_packets=7)


def test_what_a_failed_set_up_left_behind_is_read_from_its_notes() -> None:
    exc = RuntimeError("ip: RTNETLINK answers: File exists")
    exc.add_note("left behind: namespace gc-abc-3-voip: processes 123 survived SIGKILL")
    exc.add_note("an unrelated note")
    assert left_behind(exc) == ["namespace gc-abc-3-voip: processes 123 survived SIGKILL"]
    assert left_behind(RuntimeError("no notes")) == []


def test_an_agent_that_crashes_still_reports_a_harness_fault(capsys) -> None:
    def broken() -> dict:
        raise KeyError("answer")

    assert work_and_report(broken) == 1
    line = json.loads(capsys.readouterr().out)
    assert line["outcome"] == "harness-fault" and "KeyError" in line["error"]
    assert work_and_report(lambda: {"event": "result", "outcome": "ok"}) == 0
    assert json.loads(capsys.readouterr().out)["outcome"] == "ok"
