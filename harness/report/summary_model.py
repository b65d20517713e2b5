"""summary.json as a typed model, and the one reader of summary.json files.

The file's format is published (harness/report/schema/summary-v2.json) and does not follow
this module: field order here is the file's key order, and `Summary.model_dump(mode="json")`
is exactly what `write_summary` writes. Every model ignores properties it does not know, as
the schema tells consumers to. A version 1 file is read with what version 2 added filled in
as a run without harness faults would have had it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import read_json
from harness.report.schema import SUMMARY_SCHEMA_PATHS
from harness.report.scorecard_model import ScorecardCard
from harness.scoring.verdict import CellScore, CellVerdict, Thresholds

SUMMARY_SCHEMA_VERSION = 2
THRESHOLDS_NOTE = "verdict thresholds are gatecrash's proposal, not a standard"


class SummaryError(Exception):
    """The summary file cannot be used; the message names the file."""


class _Read(BaseModel):
    # The published schema tells consumers to ignore properties they do not know.
    model_config = ConfigDict(extra="ignore")


class Uplift(_Read):
    """Tool minus the direct control under the same censor and app."""

    cssr_points: float  # ratios, so -1..1
    mos: float | None  # None when either side has no median MOS


class SummaryCell(CellScore):
    """A scored cell as summary.json has it: the score, then what its control says."""

    model_config = ConfigDict(extra="ignore")

    uplift: Uplift | None = None  # None for the control itself, or when no control ran
    control_uncensored: bool = False  # see harness/report/controls.py

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.censor, self.tool, self.app)


class ExpectationCheck(_Read):
    """One `expect` of the scenario and whether its cell's verdict met it."""

    censor: str
    tool: str
    app: str
    expected: CellVerdict | list[CellVerdict]
    verdict: CellVerdict | None  # None when the cell did not run
    met: bool

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.censor, self.tool, self.app)


class FaultTotals(_Read):
    """The run's harness faults: attempts that ended in one (retried ones too), trials
    whose last attempt was one (not scored), and attempts by fault kind."""

    attempts: int = 0
    trials: int = 0
    # Fault kind -> attempts, most frequent first; kinds are an open set (plug-ins name
    # their own), so a mapping rather than fields.
    by_kind: dict[str, int] = Field(default_factory=dict)


class SummaryThresholds(Thresholds):
    """The verdict limits used; a file may name limits this gatecrash does not know."""

    model_config = ConfigDict(extra="ignore")


class Summary(_Read):
    """Per-cell scores of one run, its harness faults, and whether each expectation held."""

    schema_version: int = SUMMARY_SCHEMA_VERSION
    scenario: str
    run_id: str
    backend: str
    generated_at: str  # ISO 8601, UTC; kept as written so a file reads back unchanged
    thresholds_note: str = THRESHOLDS_NOTE
    thresholds: SummaryThresholds
    cells: list[SummaryCell]
    scorecard: list[ScorecardCard] = Field(default_factory=list)  # censors with techniques
    faults: FaultTotals
    # Tool column -> the versions its trials ran; keyed by the scenario's tool names.
    tool_versions: dict[str, list[str]] = Field(default_factory=dict)
    expectations: list[ExpectationCheck]


def _from_v1(data: dict[str, Any]) -> dict[str, Any]:
    """A version 1 summary with what version 2 added, as a run without faults has it:
    every trial valid, no fault anywhere (the fault fields of cells have defaults)."""
    cells = data.get("cells")
    if isinstance(cells, list):
        cells = [
            {"valid_trials": c.get("trials"), **c} if isinstance(c, dict) else c for c in cells
        ]
    return {**data, "cells": cells, "faults": data.get("faults", {})}


def load_summary(path: Path) -> Summary:
    """A summary.json of any published schema version, or SummaryError saying why not."""
    data = read_json(path, "summary", SummaryError)
    if isinstance(data, dict):
        version = data.get("schema_version")
        if version not in SUMMARY_SCHEMA_PATHS or isinstance(version, bool):  # True == 1
            readable = ", ".join(map(str, SUMMARY_SCHEMA_PATHS))
            raise SummaryError(
                f"{path}: schema_version {version!r} is not supported "
                f"(this gatecrash reads {readable})"
            )
        if version == 1:
            data = _from_v1(data)
    try:
        return Summary.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise SummaryError(f"{path}: not a gatecrash summary: {where}: {first['msg']}") from None
