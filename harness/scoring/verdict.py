"""Per-cell scores and verdicts from the trials of one (censor, tool, app) cell.

The thresholds are gatecrash's proposal (voip-metrics.md, "Proposed verdict
thresholds"), not a standard; a scenario may override each one. Ratios are judged by
their 95% Wilson interval, never by the bare ratio of a few trials.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from harness.results import CallMetrics, DirectionStats, TrialResult
from harness.scoring.emodel import mos_from_r
from harness.scoring.stats import median, percentile, wilson_interval

Kind = Literal["call", "message"]
# "invalid" is never produced here: it is set when the control cell disagrees with the
# censor profile, a decision across cells.
CellVerdict = Literal[
    "works", "degraded", "blocked", "signalling-blocked", "media-blocked", "invalid"
]

GOOD_R = 70.0  # r70_share counts calls at or above this R (MOS 3.6)


class Thresholds(BaseModel):
    """Verdict limits; `works` needs all works_* limits, blocked_* limits decide `blocked`."""

    model_config = ConfigDict(extra="forbid")

    works_min_cssr_lower: float = Field(
        0.8, ge=0, le=1, description="works: lower 95% Wilson bound of the success ratio"
    )
    works_min_r: float = Field(70.0, ge=0, le=100, description="works: median R of set-up calls")
    works_max_pdd_p95_ms: float = Field(5000.0, gt=0, description="works: p95 post-dial delay")
    works_min_delivery: float = Field(
        0.95, ge=0, le=1, description="works: delivered / sent messages"
    )
    blocked_max_cssr_upper: float = Field(
        0.2, ge=0, le=1, description="blocked: upper 95% Wilson bound of the success ratio below"
    )
    media_blocked_max_r: float = Field(
        50.0, ge=0, le=100, description="media-blocked: median R of set-up calls below"
    )
    blocked_max_delivery: float = Field(
        0.2, ge=0, le=1, description="blocked: delivered / sent messages below"
    )

    @model_validator(mode="after")
    def _blocked_below_works(self) -> Self:
        pairs = (
            ("blocked_max_cssr_upper", "works_min_cssr_lower"),
            ("media_blocked_max_r", "works_min_r"),
            ("blocked_max_delivery", "works_min_delivery"),
        )
        for low, high in pairs:
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not exceed {high}")
        return self


class CellScore(BaseModel):
    """One row of the score table; units in the names, None where nothing was measured."""

    model_config = ConfigDict(extra="forbid")

    censor: str
    tool: str
    app: str
    kind: Kind
    trials: int
    successes: int  # calls set up / messaging sessions connected
    cssr: float
    cssr_ci: list[float] = Field(min_length=2, max_length=2)  # 95% Wilson interval
    setup_ms_p50: float | None = None  # calls: INVITE -> 200 OK; messages: connect time
    setup_ms_p95: float | None = None
    pdd_ms_p95: float | None = None
    mos_median: float | None = None
    r_median: float | None = None  # over set-up calls; a call without R counts as 0
    r70_share: float | None = None  # share of set-up calls with R >= 70
    loss_pct_median: float | None = None  # worse direction of each call
    jitter_ms_median: float | None = None  # worse direction of each call
    delivery_ratio: float | None = None  # messages only
    verdict: CellVerdict
    reason: str
    outcomes: dict[str, int] = Field(default_factory=dict)


def _succeeded(trial: TrialResult) -> bool:
    """Set up / connected, and not by a tool that failed (the tool did not get it through)."""
    if trial.outcome == "tool-failure":
        return False
    if trial.call is not None:
        return trial.call.setup_ok
    return trial.message is not None and trial.message.connected


def _worst(call: CallMetrics, attr: str) -> float | None:
    stats: list[DirectionStats] = [d for d in (call.up, call.down) if d is not None]
    return max((getattr(d, attr) for d in stats), default=None)


def _pct(ratio: float) -> str:
    return f"{round(ratio * 100, 2):g}%"


def _rnd(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _ratio_text(successes: int, n: int, what: str, label: str, ci: tuple[float, float]) -> str:
    ratio = successes / n
    return f"{successes}/{n} {what} ({label} {ratio:.2f}, 95% CI {ci[0]:.2f}-{ci[1]:.2f})"


def _registered_kind(app: str) -> Kind:
    """The app's own kind, for a cell whose trials all failed before any metric."""
    from harness.registry import APPS, load  # lazy: app modules are heavy

    try:
        return load(APPS, app).kind
    except (KeyError, ImportError, AttributeError):
        return "call"


def _kind(trials: Sequence[TrialResult], kind: Kind | None) -> Kind:
    has_call = any(t.call is not None for t in trials)
    has_message = any(t.message is not None for t in trials)
    if has_call and has_message:
        raise ValueError("a cell mixes call and message trials")
    seen: Kind | None = "call" if has_call else "message" if has_message else None
    if kind is not None and seen is not None and kind != seen:
        raise ValueError(f"cell declared {kind} but its trials are {seen} trials")
    return kind or seen or _registered_kind(trials[0].app)


def _call_verdict(
    said: str,
    set_up: int,
    ci: tuple[float, float],
    r_med: float | None,
    no_media: int,
    pdd_p95: float | None,
    th: Thresholds,
) -> tuple[CellVerdict, str]:
    """Blocked tests first (signalling, then media), then every works limit."""
    if ci[1] < th.blocked_max_cssr_upper:
        return "signalling-blocked", f"{said}: upper bound < {th.blocked_max_cssr_upper:.2f}"
    if r_med is not None and (r_med < th.media_blocked_max_r or 2 * no_media > set_up):
        why = []
        if r_med < th.media_blocked_max_r:
            why.append(f"median R {r_med:.1f} < {th.media_blocked_max_r:g}")
        if no_media:
            why.append(f"{no_media} of {set_up} had no media")
        return "media-blocked", f"{said}, but {' and '.join(why)}"
    misses = []
    if ci[0] < th.works_min_cssr_lower:
        misses.append(f"CI lower bound {ci[0]:.2f} < {th.works_min_cssr_lower:.2f}")
    if r_med is None:
        misses.append("no call set up to rate")
    elif r_med < th.works_min_r:
        misses.append(f"median R {r_med:.1f} < {th.works_min_r:g}")
    if pdd_p95 is not None and pdd_p95 > th.works_max_pdd_p95_ms:
        misses.append(f"p95 PDD {pdd_p95:.0f} ms > {th.works_max_pdd_p95_ms:g} ms")
    if misses:
        reason = f"{said}; misses works: {'; '.join(misses)}"
        if not set_up:
            reason += (
                f" (too few trials to call it blocked: CI upper bound {ci[1]:.2f}"
                f" >= {th.blocked_max_cssr_upper:.2f})"
            )
        return "degraded", reason
    pdd_text = "no PDD measured" if pdd_p95 is None else f"p95 PDD {pdd_p95:.0f} ms"
    return "works", f"{said}, median R {r_med:.1f} >= {th.works_min_r:g}, {pdd_text}"


def _score_calls(trials: Sequence[TrialResult], th: Thresholds) -> dict[str, Any]:
    n = len(trials)
    calls = [t.call for t in trials if _succeeded(t) and t.call is not None]
    ci = wilson_interval(len(calls), n)
    r_values = [c.r_factor if c.r_factor is not None else 0.0 for c in calls]
    mos_values = [
        c.mos if c.mos is not None else mos_from_r(r) for c, r in zip(calls, r_values, strict=True)
    ]
    r_med = median(r_values)
    pdd = [t.call.pdd_ms for t in trials if t.call is not None and t.call.pdd_ms is not None]
    pdd_p95 = percentile(pdd, 95)
    no_media = sum(1 for t in trials if _succeeded(t) and t.outcome == "no-media")
    losses = [x for x in (_worst(c, "loss_pct") for c in calls) if x is not None]
    jitters = [x for x in (_worst(c, "jitter_ms") for c in calls) if x is not None]
    setups = [c.setup_ms for c in calls if c.setup_ms is not None]

    said = _ratio_text(len(calls), n, "calls set up", "CSSR", ci)
    verdict, reason = _call_verdict(said, len(calls), ci, r_med, no_media, pdd_p95, th)
    return dict(
        kind="call",
        successes=len(calls),
        cssr=round(len(calls) / n, 4),
        cssr_ci=[round(ci[0], 4), round(ci[1], 4)],
        setup_ms_p50=_rnd(percentile(setups, 50), 1),
        setup_ms_p95=_rnd(percentile(setups, 95), 1),
        pdd_ms_p95=_rnd(pdd_p95, 1),
        mos_median=_rnd(median(mos_values), 3),
        r_median=_rnd(r_med, 2),
        r70_share=round(sum(r >= GOOD_R for r in r_values) / len(calls), 4) if calls else None,
        loss_pct_median=_rnd(median(losses), 3),
        jitter_ms_median=_rnd(median(jitters), 2),
        verdict=verdict,
        reason=reason,
    )


def _score_messages(trials: Sequence[TrialResult], th: Thresholds) -> dict[str, Any]:
    n = len(trials)
    connected = [t.message for t in trials if _succeeded(t) and t.message is not None]
    ci = wilson_interval(len(connected), n)
    messages = [t.message for t in trials if t.message is not None]
    sent = sum(m.sent for m in messages)
    delivered = sum(m.delivered for m in messages)
    delivery = delivered / sent if sent else 0.0
    connects = [m.connect_ms for m in connected if m.connect_ms is not None]

    said = _ratio_text(len(connected), n, "sessions connected", "ratio", ci)
    said += f", {delivered}/{sent} messages delivered ({_pct(delivery)})"
    verdict: CellVerdict
    blocked = []
    if ci[1] < th.blocked_max_cssr_upper:
        blocked.append(f"CI upper bound {ci[1]:.2f} < {th.blocked_max_cssr_upper:.2f}")
    if delivery < th.blocked_max_delivery:
        blocked.append(f"delivery {_pct(delivery)} < {_pct(th.blocked_max_delivery)}")
    misses = []
    if ci[0] < th.works_min_cssr_lower:
        misses.append(f"CI lower bound {ci[0]:.2f} < {th.works_min_cssr_lower:.2f}")
    if delivery < th.works_min_delivery:
        misses.append(f"delivery {_pct(delivery)} < {_pct(th.works_min_delivery)}")
    if blocked:
        verdict, reason = "blocked", f"{said}: {'; '.join(blocked)}"
    elif misses:
        verdict, reason = "degraded", f"{said}; misses works: {'; '.join(misses)}"
    else:
        verdict, reason = "works", said
    return dict(
        kind="message",
        successes=len(connected),
        cssr=round(len(connected) / n, 4),
        cssr_ci=[round(ci[0], 4), round(ci[1], 4)],
        setup_ms_p50=_rnd(percentile(connects, 50), 1),
        setup_ms_p95=_rnd(percentile(connects, 95), 1),
        delivery_ratio=round(delivery, 4),
        verdict=verdict,
        reason=reason,
    )


def score_cell(
    trials: Sequence[TrialResult], thresholds: Thresholds | None = None, kind: Kind | None = None
) -> CellScore:
    """Score the trials of one cell. `kind` is needed only if no trial carries metrics
    (every trial failed early); otherwise it is read from the trials."""
    if not trials:
        raise ValueError("a cell needs at least one trial")
    cells = {t.cell for t in trials}
    if len(cells) > 1:
        raise ValueError(f"trials of several cells given: {sorted(cells)}")
    th = thresholds if thresholds is not None else Thresholds()
    censor, tool, app = trials[0].cell
    outcomes = Counter(t.outcome for t in trials)
    scorer = _score_calls if _kind(trials, kind) == "call" else _score_messages
    fields = scorer(trials, th)
    if failures := outcomes.get("tool-failure"):
        fields["reason"] += f"; {failures} tool failure{'s' if failures > 1 else ''}"
    fields["reason"] += "."
    return CellScore(
        censor=censor, tool=tool, app=app, trials=len(trials), outcomes=dict(outcomes), **fields
    )


def score_cells(
    results: Iterable[TrialResult],
    thresholds: Thresholds | None = None,
    kinds: Mapping[str, Kind] | None = None,
) -> list[CellScore]:
    """Score every (censor, tool, app) cell, in the order cells first appear.

    `kinds` maps app name -> "call" | "message" for cells whose trials carry no metrics.
    """
    groups: dict[tuple[str, str, str], list[TrialResult]] = {}
    for result in results:
        groups.setdefault(result.cell, []).append(result)
    return [
        score_cell(trials, thresholds, (kinds or {}).get(cell[2]))
        for cell, trials in groups.items()
    ]
