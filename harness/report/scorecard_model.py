"""The scorecard's shape in summary.json (`$defs/scorecard` of summary-v2.json), typed.

Kept apart from the scorecard's logic (scorecard.py) so the summary model can name it
without importing what builds it. Field order is the order summary.json has always had.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from harness.scoring.verdict import CellVerdict, Kind


class _Read(BaseModel):
    # The published schema tells consumers to ignore properties they do not know.
    model_config = ConfigDict(extra="ignore")


class Effectiveness(_Read):
    """The censor's targets as its `direct` control found them."""

    blocked: int
    decided: int  # targets whose direct cell is neither inconclusive nor invalid
    undecided: list[str]
    share: float | None  # blocked / decided; None when nothing was decided
    blocked_apps: list[str]
    not_blocked_apps: list[str]


class ToolEvasion(_Read):
    restored: list[str]  # blocked targets this tool's cell works for
    undecided: list[str]  # blocked targets this tool's cell left inconclusive or invalid


class Evasion(_Read):
    tools: dict[str, ToolEvasion]  # tool name -> what it restored
    restored_by_any: list[str]
    share: float | None  # blocked targets restored by at least one tool; None: none blocked
    tools_restoring_all: list[str]


class CensorRule(_Read):
    """What the censor's event log shows acting on a bystander's trials."""

    technique: str
    rule: str
    analyzer: str  # protocols the analyzers recognised on the flow, comma-separated
    events: int
    trials: int


class Collateral(_Read):
    """One bystander app: its direct verdict under the censor and its loss against open."""

    app: str
    kind: Kind | None = None  # None when its cell did not run
    verdict: CellVerdict | None
    open_verdict: CellVerdict | None
    harmed: bool | None  # None: inconclusive, invalid or not run
    cssr_points: float | None
    mos: float | None
    delivery: float | None
    # Figure label ("duration", "throughput") -> censored / open: workloads only, and only
    # the figures both sides measured, so the keys vary from app to app.
    workload_ratio: dict[str, float] = Field(default_factory=dict)
    rules: list[CensorRule] = Field(default_factory=list)  # most frequent first


class ScorecardCard(_Read):
    """One censor with techniques: effectiveness, evasion, collateral, and the sentence."""

    censor: str
    targets: list[str]
    bystanders: list[str]
    baseline: str | None  # the censor without techniques bystanders are compared with
    effectiveness: Effectiveness
    evasion: Evasion
    collateral: list[Collateral]
    sentence: str
