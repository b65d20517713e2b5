"""A call's rating: the E-model's R and MOS (ITU-T G.107) from what each direction's
receiver measured, the worse direction deciding, as a user hears the worse side."""

from __future__ import annotations

from harness.results import CallMetrics
from harness.scoring.emodel import score_call


def rate_call(call: CallMetrics, codec: str) -> CallMetrics:
    """R and MOS of the worse direction (ITU-T G.107); left unset unless both directions
    received media (a one-way call is not rated)."""
    scores = []
    for d in (call.up, call.down):
        if d is None or d.received == 0:
            return call
        scores.append(score_call(d.loss_pct, d.burst_r, d.owd_ms_mean or 0.0, codec))
    call.r_factor, call.mos = (round(v, 3) for v in min(scores))
    return call
