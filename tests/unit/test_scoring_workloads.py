"""Verdicts of the bystander workloads (web, download, dns): success is the workload
completed, with its Wilson interval; completeness, a download's throughput and a timed
workload's p95 duration are measured figures that make a cell blocked or degraded."""

from __future__ import annotations

import pytest

from harness.results import TrialResult, WorkloadMetrics
from harness.scoring.verdict import Thresholds, score_cell, score_cells


def workload_trial(
    trial: int = 0,
    *,
    items: int = 9,
    completed: int | None = None,
    duration_ms: float = 250.0,
    throughput_mbps: float | None = None,
    outcome: str | None = None,
    app: str = "web",
) -> TrialResult:
    done = items if completed is None else completed
    return TrialResult(
        run_id="r1",
        scenario="unit",
        censor="open",
        tool="direct",
        app=app,
        trial=trial,
        started_at="2026-01-01T00:00:00Z",
        outcome=outcome or ("ok" if done == items else "reset"),
        workload=WorkloadMetrics(
            items=items,
            completed=done,
            duration_ms=duration_ms,
            throughput_mbps=throughput_mbps,
        ),
    )


def trials(n: int, **kw: object) -> list[TrialResult]:
    return [workload_trial(i, **kw) for i in range(n)]  # type: ignore[arg-type]


def test_sixteen_complete_page_loads_work() -> None:
    cell = score_cell(trials(16))
    assert cell.kind == "workload" and cell.verdict == "works", cell.reason
    assert cell.successes == 16 and cell.completeness == 1.0
    assert cell.setup_ms_p50 == cell.setup_ms_p95 == 250.0
    assert cell.throughput_mbps_median is None
    assert cell.reason.startswith("16/16 workloads completed")


def test_three_complete_loads_are_too_few_to_say_works() -> None:
    cell = score_cell(trials(3))
    assert cell.verdict == "inconclusive" and "13 more trials" in cell.reason, cell.reason


def test_pages_whose_document_is_reset_are_blocked() -> None:
    cell = score_cell(trials(3, completed=0))
    assert cell.verdict == "blocked", cell.reason  # measured: nothing was fetched
    assert cell.completeness == 0.0 and cell.successes == 0
    assert "completeness 0% < 20%" in cell.reason


def test_sixteen_failed_runs_with_most_items_done_are_blocked_by_the_interval() -> None:
    cell = score_cell(trials(16, completed=8))
    assert cell.verdict == "blocked", cell.reason
    assert "CI upper bound 0.19 < 0.20" in cell.reason


def test_five_failed_runs_with_most_items_done_are_inconclusive() -> None:
    cell = score_cell(trials(5, completed=8))
    assert cell.verdict == "inconclusive", cell.reason


def test_slow_page_loads_are_degraded() -> None:
    cell = score_cell(trials(16, duration_ms=9000.0))
    assert cell.verdict == "degraded", cell.reason
    assert "p95 duration 9000 ms > 5000 ms" in cell.reason


def test_slow_downloads_are_degraded_by_throughput_not_duration() -> None:
    slow = trials(16, items=1, duration_ms=60_000.0, throughput_mbps=0.9, app="download")
    cell = score_cell(slow)
    assert cell.verdict == "degraded", cell.reason
    assert cell.throughput_mbps_median == 0.9
    assert "median throughput 0.90 < 2 Mbit/s" in cell.reason
    assert "p95 duration" not in cell.reason  # a download is judged by its throughput
    fast = trials(16, items=1, duration_ms=60_000.0, throughput_mbps=180.0, app="download")
    assert score_cell(fast).verdict == "works"


def test_a_cut_short_download_does_not_count_its_throughput() -> None:
    cut = workload_trial(15, items=1, completed=0, throughput_mbps=0.5, app="download")
    cell = score_cell([cut, *trials(15, items=1, throughput_mbps=100.0, app="download")])
    assert cell.valid_trials == 16 and cell.successes == 15
    assert cell.throughput_mbps_median == 100.0


def test_a_resolver_lying_for_one_name_leaves_no_lookup_set_complete() -> None:
    # 8 of 9 names right in every trial: completeness 89%, yet no trial completed
    cell = score_cell(trials(16, completed=8, app="dns"))
    assert cell.verdict == "blocked" and cell.completeness == 0.8889, cell.reason


def test_some_incomplete_runs_are_inconclusive_while_works_is_not_ruled_out() -> None:
    mixed = [workload_trial(i, app="dns") for i in range(12)] + [
        workload_trial(i, completed=8, app="dns") for i in range(12, 16)
    ]
    cell = score_cell(mixed)
    # 12/16: interval 0.51-0.90 reaches works; completeness 97% misses nothing
    assert cell.verdict == "inconclusive", cell.reason
    assert cell.completeness == pytest.approx((12 * 9 + 4 * 8) / (16 * 9), abs=1e-4)


def test_custom_workload_thresholds() -> None:
    th = Thresholds(works_min_throughput_mbps=500.0)
    cell = score_cell(trials(16, items=1, throughput_mbps=180.0, app="download"), th)
    assert cell.verdict == "degraded"


def test_tool_failures_before_the_workload_are_blocked_given_the_kind() -> None:
    bare = [
        TrialResult(
            run_id="r1",
            scenario="unit",
            censor="open",
            tool="shadowsocks",
            app="web",
            trial=i,
            started_at="2026-01-01T00:00:00Z",
            outcome="tool-failure",
        )
        for i in range(16)
    ]
    cells = score_cells(bare, kinds={"web": "workload"})
    assert cells[0].kind == "workload" and cells[0].verdict == "blocked", cells[0].reason


def test_the_registered_bystanders_are_workloads() -> None:
    from harness.registry import app_plugin

    assert {name: app_plugin(name).kind for name in ("web", "download", "dns")} == {
        "web": "workload",
        "download": "workload",
        "dns": "workload",
    }
