"""summary.json: per-cell scores, the harness faults, and whether each expectation held.

Its shape is published as harness/report/schema/summary-v2.json and typed by
harness/report/summary_model.py; `schema_version` says which version a file follows (bump
it, and add a new schema file, on a breaking change). Version 2 added the harness faults
(per cell and for the run), `valid_trials`, and the verdict `inconclusive`; version 1 files
(summary-v1.json) are still read (summary_model.load_summary).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from harness.registry import app_kinds
from harness.report.controls import annotate_controls
from harness.report.scorecard import build_scorecard
from harness.report.summary_model import (
    ExpectationCheck,
    FaultTotals,
    Summary,
    SummaryThresholds,
)
from harness.results import TrialResult
from harness.scenario import Scenario
from harness.scoring.verdict import CellScore, score_cells


def check_expectations(scenario: Scenario, cells: list[CellScore]) -> list[ExpectationCheck]:
    by_cell = {(c.censor, c.tool, c.app): c for c in cells}
    checked = []
    for exp in scenario.expect:
        cell = by_cell.get((exp.censor, exp.tool, exp.app))
        verdict = cell.verdict if cell else None
        checked.append(
            ExpectationCheck(
                censor=exp.censor,
                tool=exp.tool,
                app=exp.app,
                expected=exp.verdict,
                verdict=verdict,
                met=verdict is not None and exp.accepts(verdict),
            )
        )
    return checked


def fault_totals(cells: list[CellScore]) -> FaultTotals:
    """The run's harness faults: attempts that ended in one (retried ones too), trials
    whose last attempt was one (not scored), and attempts by fault kind."""
    by_kind: Counter[str] = Counter()
    for cell in cells:
        by_kind.update(cell.fault_kinds)
    return FaultTotals(
        attempts=sum(c.fault_attempts for c in cells),
        trials=sum(c.faults for c in cells),
        by_kind=dict(by_kind.most_common()),
    )


def build_summary(
    scenario: Scenario, run_id: str, backend: str, results: list[TrialResult]
) -> Summary:
    cells = score_cells(results, scenario.thresholds, app_kinds(scenario.apps))
    techniques = {name: len(spec) for name, spec in scenario.censors.items()}
    annotated = annotate_controls(cells, techniques)
    return Summary(
        scenario=scenario.name,
        run_id=run_id,
        backend=backend,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        thresholds=SummaryThresholds(**scenario.thresholds.model_dump()),
        cells=annotated,
        scorecard=build_scorecard(annotated, techniques, scenario.targets, results),
        faults=fault_totals(cells),
        tool_versions=tool_versions(results),
        expectations=check_expectations(scenario, cells),
    )


def tool_versions(results: list[TrialResult]) -> dict[str, list[str]]:
    """Per tool column, the versions its trials ran (an own build names itself), so a
    report says which build a verdict is about."""
    seen: dict[str, list[str]] = {}
    for result in results:
        versions = seen.setdefault(result.tool, [])
        if result.tool_version and result.tool_version not in versions:
            versions.append(result.tool_version)
    return seen


def write_summary(path: Path, summary: Summary) -> None:
    """summary.json as json.dumps writes it (non-ASCII escaped), as it always was."""
    path.write_text(json.dumps(summary.model_dump(mode="json"), indent=2) + "\n")
