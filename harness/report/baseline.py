"""Baselines and the regression gate: did this run get worse than a known-good one?

Only changes the data can back are failures: a worse verdict, a CSSR drop whose 95% Wilson
intervals do not overlap, or a median MOS drop beyond a margin. A CSSR drop inside
overlapping intervals is reported as "flaky-looking" (a few trials cannot tell it from
noise), and an `invalid` verdict on either side is reported but never fails the gate, since
the comparison it would rest on is not valid. An `inconclusive` verdict on either side is
"not decided": never a regression by itself (a CSSR or MOS drop the data backs still is),
and never a pass either, so it is always reported, with the reason. Cells missing from the
run or new in it are reported too; they reflect a changed scenario, not a worse tool, so
they do not fail.

Baseline files are version 1; `reason` was added later and is optional, so baselines
written before it (and from version 1 summaries) are still read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.errors import read_json
from harness.report.summary_model import Summary, SummaryCell

BASELINE_VERSION = 1
DEFAULT_MOS_MARGIN = 0.3

# Lower is better; signalling-blocked and blocked (messaging) are equally bad.
VERDICT_RANK = {
    "works": 0,
    "degraded": 1,
    "media-blocked": 2,
    "signalling-blocked": 3,
    "blocked": 3,
}

Status = Literal[
    "regressed", "flaky-looking", "invalid", "not-decided", "improved", "new", "missing"
]
UNDECIDED = "inconclusive"


class BaselineError(Exception):
    """The baseline file cannot be used; the message names the file."""


class BaselineCell(BaseModel):
    model_config = ConfigDict(extra="ignore")

    censor: str
    tool: str
    app: str
    verdict: str
    cssr: float = Field(ge=0, le=1)
    cssr_ci: list[float] = Field(min_length=2, max_length=2)
    mos_median: float | None = None
    trials: int = Field(ge=1)
    reason: str = ""  # why the verdict; absent from baselines written before it was kept

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.censor, self.tool, self.app)

    @property
    def label(self) -> str:
        return " / ".join(self.key)


class Baseline(BaseModel):
    model_config = ConfigDict(extra="ignore")

    baseline_version: int
    scenario: str
    run_id: str = ""
    created_at: str = ""
    cells: list[BaselineCell]


def make_baseline(summary: Summary) -> dict[str, Any]:
    """The part of a summary the gate compares against, per cell (BaselineCell's fields,
    in its order)."""
    return {
        "baseline_version": BASELINE_VERSION,
        "scenario": summary.scenario,
        "run_id": summary.run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "cells": [
            BaselineCell.model_validate(cell, from_attributes=True).model_dump()
            for cell in summary.cells
        ],
    }


def write_baseline(path: Path, summary: Summary) -> None:
    path.write_text(json.dumps(make_baseline(summary), indent=2) + "\n")


def load_baseline(path: Path) -> Baseline:
    data = read_json(path, "baseline", BaselineError)
    if isinstance(data, dict) and data.get("baseline_version") not in (None, BASELINE_VERSION):
        raise BaselineError(
            f"{path}: baseline_version {data['baseline_version']!r} is not supported "
            f"(this gatecrash reads {BASELINE_VERSION})"
        )
    try:
        return Baseline.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise BaselineError(f"{path}: not a gatecrash baseline: {where}: {first['msg']}") from None


@dataclass
class CellChange:
    label: str
    status: Status
    reasons: list[str] = field(default_factory=list)
    before: str = "-"
    after: str = "-"

    @property
    def fails(self) -> bool:
        return self.status == "regressed"


def _describe(verdict: str, cssr: float, ci: list[float], mos: float | None) -> str:
    mos_text = "-" if mos is None else f"{mos:.2f}"
    return f"{verdict}, CSSR {cssr:.2f} [{ci[0]:.2f}, {ci[1]:.2f}], MOS {mos_text}"


def compare_cell(old: BaselineCell, new: SummaryCell, mos_margin: float) -> CellChange | None:
    """What changed in one cell, or None when nothing worth reporting did."""
    change = CellChange(
        label=old.label,
        status="improved",
        before=_describe(old.verdict, old.cssr, old.cssr_ci, old.mos_median),
        after=_describe(new.verdict, new.cssr, new.cssr_ci, new.mos_median),
    )
    if "invalid" in (old.verdict, new.verdict):
        if old.verdict == new.verdict:
            return None
        change.status = "invalid"
        change.reasons.append(f"verdict {old.verdict} -> {new.verdict} (not compared)")
        return change
    regressions, flaky, better = _ratio_and_mos(old, new, mos_margin)
    old_rank, new_rank = VERDICT_RANK.get(old.verdict), VERDICT_RANK.get(new.verdict)
    if old_rank is not None and new_rank is not None and new_rank != old_rank:
        text = f"verdict {old.verdict} -> {new.verdict}"
        (regressions if new_rank > old_rank else better).insert(0, text)
    if regressions:
        change.status, change.reasons = "regressed", regressions + flaky
    elif UNDECIDED in (old.verdict, new.verdict):
        change.status, change.reasons = "not-decided", [_undecided_text(old, new), *flaky, *better]
    elif flaky:
        change.status, change.reasons = "flaky-looking", flaky
    elif better:
        change.reasons = better
    else:
        return None
    return change


def _undecided_text(old: BaselineCell, new: SummaryCell) -> str:
    """Which side is inconclusive, and its reason (how many more trials would decide it)."""
    sides = []
    if new.verdict == UNDECIDED:
        sides.append(f"this run: {new.reason or 'too few trials'}")
    if old.verdict == UNDECIDED:
        sides.append(f"baseline: {old.reason or 'too few trials'}")
    return f"verdict {old.verdict} -> {new.verdict}, not decided ({'; '.join(sides)})"


def _ratio_and_mos(
    old: BaselineCell, new: SummaryCell, mos_margin: float
) -> tuple[list[str], list[str], list[str]]:
    """CSSR and MOS changes as (regressions, flaky-looking, better): a regression only
    where the data back it."""
    regressions: list[str] = []
    flaky: list[str] = []
    better: list[str] = []
    ci = new.cssr_ci
    if new.cssr < old.cssr:
        text = f"CSSR {old.cssr:.2f} -> {new.cssr:.2f}"
        if ci[1] < old.cssr_ci[0]:
            regressions.append(f"{text}, 95% intervals do not overlap")
        else:
            flaky.append(f"{text}, but the 95% intervals overlap")
    elif new.cssr > old.cssr and ci[0] > old.cssr_ci[1]:
        better.append(f"CSSR {old.cssr:.2f} -> {new.cssr:.2f}")
    new_mos = new.mos_median
    if old.mos_median is not None and new_mos is not None:
        drop = old.mos_median - new_mos
        if drop > mos_margin:
            regressions.append(
                f"median MOS {old.mos_median:.2f} -> {new_mos:.2f} (fell by {drop:.2f} > "
                f"{mos_margin:g})"
            )
        elif -drop > mos_margin:
            better.append(f"median MOS {old.mos_median:.2f} -> {new_mos:.2f}")
    return regressions, flaky, better


def compare(baseline: Baseline, summary: Summary, mos_margin: float) -> list[CellChange]:
    """Every reportable change, baseline cell order first, then cells new in this run."""
    current = {c.key: c for c in summary.cells}
    changes = []
    for old in baseline.cells:
        new = current.pop(old.key, None)
        if new is None:
            before = _describe(old.verdict, old.cssr, old.cssr_ci, old.mos_median)
            changes.append(
                CellChange(old.label, "missing", ["in the baseline, not in this run"], before)
            )
            continue
        if (change := compare_cell(old, new, mos_margin)) is not None:
            changes.append(change)
    for key, new in current.items():
        changes.append(
            CellChange(
                " / ".join(key),
                "new",
                ["not in the baseline"],
                after=_describe(new.verdict, new.cssr, new.cssr_ci, new.mos_median),
            )
        )
    return changes
