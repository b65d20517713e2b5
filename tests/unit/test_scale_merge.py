"""`gatecrash run --shard I/N` then `gatecrash merge`: the same cells and verdicts as one
serial run, every trial exactly once; shards that do not belong together are refused.

No namespaces: Runner.run_trial is replaced by a deterministic recorder (it also writes a
trial directory with a censor log); the CLI, the runner's loop, the files, the merge and
the report are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import harness.runner as runner_module
from harness.cli import EXIT_BAD_INPUT, EXIT_EXPECT_FAILED, EXIT_HARNESS_FAULT, EXIT_OK, main
from harness.report.loading import load_run
from harness.results import Fault, TrialResult
from harness.runner import Runner
from harness.scale.shard import plan, trial_keys
from harness.scenario import parse_scenario
from tests.unit.test_report_files import call_trial, chat_trial

SHARDS = 4
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


def fake_trial(self, censor, tool, app, trial, ca, attempt=0) -> TrialResult:
    """open works; under the throttle direct SIP fails, the rest works."""
    tdir = self.trial_dir(censor, tool, app, trial, attempt)
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / "censor.jsonl").write_text(json.dumps({"action": "installed", "trial": trial}) + "\n")
    if app == "sip":
        ok = censor == "open" or tool != "direct"
        result = call_trial(censor, tool, trial, ok=ok, run_id=self.run_id)
    else:
        result = chat_trial(censor, tool, trial).model_copy(update={"run_id": self.run_id})
    result.logs = {"dir": str(tdir), "censor": str(tdir / "censor.jsonl")}
    return result


@pytest.fixture
def fake_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setattr(runner_module, "STATE_DIR", tmp_path / "state")
    monkeypatch.setattr(Runner, "preflight", lambda self: None)
    monkeypatch.setattr(Runner, "run_trial", fake_trial)
    scenario = tmp_path / "unit.yaml"
    scenario.write_text(SCENARIO)
    return scenario


def run_shards(scenario: Path, root: Path, count: int = SHARDS, name: str = "shard") -> list[Path]:
    dirs = []
    for index in range(count):
        out = root / f"{name}-{index}"
        argv = ["run", str(scenario), "--shard", f"{index}/{count}", "--out", str(out)]
        assert main([*argv, "--jobs", "2"]) == EXIT_OK  # a shard judges no expectation
        dirs.append(out)
    return dirs


def cells(directory: Path) -> dict[tuple[str, str, str], tuple[str, int]]:
    summary = json.loads((directory / "summary.json").read_text())
    return {
        (c["censor"], c["tool"], c["app"]): (c["verdict"], c["trials"]) for c in summary["cells"]
    }


def test_merged_shards_equal_the_serial_run(fake_runs: Path, tmp_path: Path, capsys) -> None:
    serial = tmp_path / "serial"
    assert main(["run", str(fake_runs), "--out", str(serial), "--jobs", "1"]) == EXIT_EXPECT_FAILED
    dirs = run_shards(fake_runs, tmp_path)
    merged = tmp_path / "merged"
    capsys.readouterr()
    assert main(["merge", str(merged), *map(str, dirs)]) == EXIT_EXPECT_FAILED  # as serial
    out = capsys.readouterr().out
    assert "merged 4 of 4 shards (32 records)" in out and "throttle" in out  # the table

    assert cells(merged) == cells(serial) and len(cells(merged)) == 8
    run = load_run(merged)
    keys = [r.key for r in run.results]
    assert sorted(keys) == sorted(trial_keys(parse_scenario(SCENARIO)))
    assert len(keys) == len(set(keys)) == 32  # every trial exactly once
    for result in run.results:  # logs point into the merged directory, and are there
        assert Path(result.logs["dir"]).parent.parent.parent.parent.parent == merged
        assert json.loads(Path(result.logs["censor"]).read_text())["trial"] == result.trial
    assert (merged / "report.html").is_file() and (merged / "scenario.json").is_file()
    record = json.loads((merged / "merge.json").read_text())
    assert [m["shard"] for m in record["merged"]] == [0, 1, 2, 3]
    assert record["missing_shards"] == [] and record["missing_trials"] == []
    shard0 = json.loads((dirs[0] / "shard.json").read_text())
    scenario = parse_scenario(SCENARIO)
    assert [tuple(k) for k in shard0["trials"]] == plan(scenario, SHARDS)[0]
    assert json.loads((dirs[0] / "summary.json").read_text())["expectations"] == []


def test_a_merged_run_is_an_ordinary_results_directory(fake_runs: Path, tmp_path: Path) -> None:
    """report, baseline and gate read it as they read a serial run."""
    serial = tmp_path / "serial"
    main(["run", str(fake_runs), "--out", str(serial)])
    merged = tmp_path / "merged"
    main(["merge", str(merged), *map(str, run_shards(fake_runs, tmp_path))])
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(serial), "-o", str(baseline)]) == EXIT_OK
    assert main(["gate", str(merged), "--baseline", str(baseline)]) == EXIT_OK
    junit = tmp_path / "junit.xml"
    assert main(["report", str(merged), "--junit", str(junit)]) == EXIT_EXPECT_FAILED
    assert junit.read_text().count("<testcase") == 8


def test_shard_with_job_completion_index(fake_runs: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JOB_COMPLETION_INDEX", "2")
    out = tmp_path / "pod"
    assert main(["run", str(fake_runs), "--shards", "3", "--out", str(out)]) == EXIT_OK
    manifest = json.loads((out / "shard.json").read_text())
    assert (manifest["shard"], manifest["shards"]) == (2, 3)
    recorded = {tuple(json.loads(line)[k] for k in ("censor", "tool", "app", "trial"))
                for line in (out / "results.jsonl").read_text().splitlines()}  # fmt: skip
    assert recorded == {tuple(k) for k in manifest["trials"]}


def test_shards_without_an_index_exit_2(fake_runs: Path, tmp_path: Path, capsys) -> None:
    assert main(["run", str(fake_runs), "--shards", "3", "--out", str(tmp_path / "o")]) == 2
    assert "JOB_COMPLETION_INDEX" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_shard_is_an_error_unless_partial(fake_runs, tmp_path, capsys) -> None:
    dirs = run_shards(fake_runs, tmp_path)
    capsys.readouterr()
    given = [str(dirs[0]), str(dirs[1]), str(dirs[3])]
    assert main(["merge", str(tmp_path / "m"), *given]) == EXIT_BAD_INPUT
    assert "missing shard(s) 2 of 4" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()
    status = main(["merge", str(tmp_path / "m"), *given, "--allow-partial"])
    assert status in (EXIT_OK, EXIT_EXPECT_FAILED)
    assert "warning: missing shard(s) 2 of 4" in capsys.readouterr().err
    record = json.loads((tmp_path / "m" / "merge.json").read_text())
    assert record["missing_shards"] == [2]


def test_a_shard_cut_short_is_reported(fake_runs, tmp_path, capsys) -> None:
    dirs = run_shards(fake_runs, tmp_path)
    path = dirs[1] / "results.jsonl"
    path.write_text("".join(path.read_text().splitlines(True)[:-1]))  # the pod was killed
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), *map(str, dirs)]) == EXIT_BAD_INPUT
    assert "1 trial(s) of the given shards have no record" in capsys.readouterr().err


def test_shards_of_different_scenarios_are_refused(fake_runs, tmp_path, capsys) -> None:
    dirs = run_shards(fake_runs, tmp_path)
    other = tmp_path / "other.yaml"
    other.write_text(SCENARIO.replace("trials: 4", "trials: 5"))
    others = run_shards(other, tmp_path, name="other")
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), *map(str, dirs[:3]), str(others[3])]) == 2
    err = capsys.readouterr().err
    assert "shards of different scenarios" in err and str(others[3]) in err


def test_a_shard_given_twice_is_refused(fake_runs, tmp_path, capsys) -> None:
    dirs = run_shards(fake_runs, tmp_path)
    again = run_shards(fake_runs, tmp_path / "again")
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), *map(str, dirs), str(again[2])]) == 2
    assert "shard 2/4 is given twice" in capsys.readouterr().err


def test_overlapping_shards_are_refused(fake_runs, tmp_path, capsys) -> None:
    """Shards whose trial lists overlap (e.g. planned by different gatecrash versions)."""
    dirs = run_shards(fake_runs, tmp_path)
    manifest = json.loads((dirs[1] / "shard.json").read_text())
    stolen = json.loads((dirs[0] / "shard.json").read_text())["trials"][0]
    manifest["trials"].append(stolen)
    (dirs[1] / "shard.json").write_text(json.dumps(manifest))
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), *map(str, dirs)]) == EXIT_BAD_INPUT
    assert "overlap: 1 trial(s) in both" in capsys.readouterr().err


def test_a_record_outside_its_shard_is_refused(fake_runs, tmp_path, capsys) -> None:
    dirs = run_shards(fake_runs, tmp_path)
    stray = (dirs[0] / "results.jsonl").read_text().splitlines(True)[0]
    with (dirs[1] / "results.jsonl").open("a") as f:
        f.write(stray)
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), *map(str, dirs)]) == EXIT_BAD_INPUT
    assert "not in shard 1/4" in capsys.readouterr().err


def test_merge_refuses_a_plain_run_and_a_used_out(fake_runs, tmp_path, capsys) -> None:
    dirs = run_shards(fake_runs, tmp_path)
    serial = tmp_path / "serial"
    main(["run", str(fake_runs), "--out", str(serial)])
    capsys.readouterr()
    assert main(["merge", str(tmp_path / "m"), str(serial)]) == EXIT_BAD_INPUT
    assert "shard.json: missing" in capsys.readouterr().err
    assert main(["merge", str(serial), *map(str, dirs)]) == EXIT_BAD_INPUT
    assert "not an empty directory" in capsys.readouterr().err


def test_a_restarted_shard_continues_its_directory(fake_runs, tmp_path) -> None:
    """A retried pod reruns the same command: recorded trials are not run again."""
    (out,) = run_shards(fake_runs, tmp_path, count=1)
    before = (out / "results.jsonl").read_text()
    assert main(["run", str(fake_runs), "--shard", "0/1", "--out", str(out)]) == EXIT_OK
    assert (out / "results.jsonl").read_text() == before
    assert main(["run", str(fake_runs), "--shard", "0/2", "--out", str(out)]) == EXIT_BAD_INPUT


def test_harness_faults_exit_3_in_the_shard_and_the_merge(fake_runs, tmp_path, monkeypatch) -> None:
    """A trial the harness kept failing makes its cell invalid (1 of 4 > 20 %): the shard
    holding it exits 3 (the Job's FailIndex rule), the others 0, and the merge 3, like a
    serial run."""
    broken = ("throttle", "shadowsocks", "xmpp", 0)

    def faulty(self, censor, tool, app, trial, ca, attempt=0):
        result = fake_trial(self, censor, tool, app, trial, ca, attempt)
        if (censor, tool, app, trial) == broken:
            fault = Fault(phase="app", kind="agent-crashed", detail="exit 1")
            return result.model_copy(update={"outcome": "harness-fault", "fault": fault})
        return result

    monkeypatch.setattr(Runner, "run_trial", faulty)
    statuses = []
    for index in range(SHARDS):
        argv = ["run", str(fake_runs), "--shard", f"{index}/{SHARDS}", "--out"]
        statuses.append(main([*argv, str(tmp_path / f"s{index}"), "--retries", "0"]))
    (holder,) = [
        i for i, keys in enumerate(plan(parse_scenario(SCENARIO), SHARDS)) if broken in keys
    ]
    assert statuses == [EXIT_HARNESS_FAULT if i == holder else EXIT_OK for i in range(SHARDS)]
    dirs = [str(tmp_path / f"s{i}") for i in range(SHARDS)]
    assert main(["merge", str(tmp_path / "m"), *dirs]) == EXIT_HARNESS_FAULT
    assert cells(tmp_path / "m")[broken[:3]] == ("invalid", 4)


def test_more_shards_than_trials_leaves_some_empty(fake_runs, tmp_path) -> None:
    dirs = run_shards(fake_runs, tmp_path, count=40)  # 32 trials
    empty = [d for d in dirs if not json.loads((d / "shard.json").read_text())["trials"]]
    assert len(empty) == 8
    assert main(["merge", str(tmp_path / "m"), *map(str, dirs)]) == EXIT_EXPECT_FAILED
    assert len(load_run(tmp_path / "m").results) == 32


def test_a_shard_killed_before_its_first_trial_starts_again(fake_runs, tmp_path) -> None:
    """shard.json written, nothing else yet (the pod died at once): the rerun starts anew."""
    (out,) = run_shards(fake_runs, tmp_path, count=1)
    for name in ("scenario.json", "results.jsonl"):
        (out / name).unlink()
    assert main(["run", str(fake_runs), "--shard", "0/1", "--out", str(out)]) == EXIT_OK
    assert len((out / "results.jsonl").read_text().splitlines()) == 32


def test_the_pytest_plugin_judges_a_merged_run(fake_runs, tmp_path) -> None:
    """`pytest SCENARIO --gatecrash-results MERGED`: one item per expectation, judged on the
    merged run (here one holds, one does not), nothing run again."""
    merged = tmp_path / "results" / "unit"
    main(["merge", str(merged), *map(str, run_shards(fake_runs, tmp_path))])
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", str(fake_runs), "-p", "no:cacheprovider", "-q",
            f"--junitxml={junit}", "--rootdir", str(tmp_path)]  # fmt: skip
    for results in (merged, merged.parent):  # DIR itself, or DIR/NAME
        proc = subprocess.run([*argv, "--gatecrash-results", str(results)], cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert proc.returncode == 1 and "1 failed, 1 passed" in proc.stdout, proc.stdout
        assert "expected works, got signalling-blocked" in proc.stdout
    other = tmp_path / "other.yaml"
    other.write_text(SCENARIO.replace("name: unit", "name: other"))
    proc = subprocess.run([*argv[:3], str(other), *argv[4:], "--gatecrash-results", str(merged)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert proc.returncode == 1 and "holds a run of 'unit', not of 'other'" in proc.stdout
