"""The `direct` tool as each (censor, app) pair's control: uplift and control validity.

Uplift is what a tool adds over going direct under the same censor: `cssr_points` is the
tool's CSSR minus the control's (ratios, so -1..1) and `mos` the difference of median MOS.

Control validity, and why it does not mark cells "invalid": when a censor has techniques
but the direct control still `works` for an app, that censor did not censor that app, so
any tool's result there says nothing about circumvention. Deciding that the scenario was
*meant* to censor the app would need intent the scenario does not declare (a throttle
aimed at media may rightly leave chat alone), so the tool cells keep their own verdict and
get `control_uncensored: true`; the terminal and JUnit views print CONTROL_NOTE for them.
A censor without techniques (the open network) is uncensored by design and is not flagged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.report.summary_model import SummaryCell, Uplift
from harness.scoring.verdict import CellScore

CONTROL_TOOL = "direct"
CONTROL_NOTE = "control not censored: uplift not attributable to the tool"


def _diff(tool: float | None, control: float | None, digits: int) -> float | None:
    if tool is None or control is None:
        return None
    return round(tool - control, digits)


def annotate_controls(
    cells: Sequence[CellScore], technique_counts: Mapping[str, int]
) -> list[SummaryCell]:
    """The summary's cells: each of `cells` with `uplift` and `control_uncensored`.

    `technique_counts` maps censor name -> number of techniques in the scenario.
    """
    controls = {(c.censor, c.app): c for c in cells if c.tool == CONTROL_TOOL}
    out = []
    for cell in cells:
        control = controls.get((cell.censor, cell.app))
        uplift, uncensored = None, False
        if cell.tool != CONTROL_TOOL and control is not None:
            uplift = Uplift(
                cssr_points=round(cell.cssr - control.cssr, 4),
                mos=_diff(cell.mos_median, control.mos_median, 3),
            )
            uncensored = technique_counts.get(cell.censor, 0) > 0 and control.verdict == "works"
        fields = {**cell.model_dump(), "uplift": uplift, "control_uncensored": uncensored}
        out.append(SummaryCell.model_validate(fields))
    return out
