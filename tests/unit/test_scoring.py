"""Statistics and per-cell verdicts, built from TrialResult records as results.jsonl holds them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from harness.results import CallMetrics, DirectionStats, Fault, MessageMetrics, TrialResult
from harness.scoring.stats import median, percentile, wilson_interval, wilson_interval_of_ratio
from harness.scoring.verdict import (
    CellScore,
    Thresholds,
    more_trials_to_decide,
    score_cell,
    score_cells,
)

# ---------------------------------------------------------------- statistics


@pytest.mark.parametrize(
    ("successes", "n", "lower", "upper"),
    [
        (5, 5, 0.5655, 1.0),
        (0, 5, 0.0, 0.4345),
        (8, 10, 0.4902, 0.9433),
        (16, 16, 0.8064, 1.0),  # the fewest trials that can meet works (lower >= 0.8)
        (0, 16, 0.0, 0.1936),  # the fewest that can be blocked (upper < 0.2)
        (0, 15, 0.0, 0.2039),
    ],
)
def test_wilson_interval_known_values(successes: int, n: int, lower: float, upper: float) -> None:
    got = wilson_interval(successes, n)
    assert got == pytest.approx((lower, upper), abs=1e-4)


@given(st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_of_a_ratio_matches_the_counts_it_came_from(counts: tuple[int, int]) -> None:
    successes, n = counts
    assert wilson_interval_of_ratio(successes / n, n) == wilson_interval(successes, n)


@pytest.mark.parametrize(("ratio", "n"), [(0.5, 0), (-0.1, 3), (1.1, 3)])
def test_wilson_of_a_ratio_rejects_impossible_input(ratio: float, n: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval_of_ratio(ratio, n)


def test_wilson_interval_of_no_trials_is_uninformative() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)


@pytest.mark.parametrize(("successes", "n"), [(-1, 3), (4, 3), (0, -1)])
def test_wilson_interval_rejects_impossible_counts(successes: int, n: int) -> None:
    with pytest.raises(ValueError):
        wilson_interval(successes, n)


@given(st.integers(1, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_bounds_contain_the_ratio_and_stay_in_unit_interval(counts: tuple[int, int]) -> None:
    successes, n = counts
    lower, upper = wilson_interval(successes, n)
    assert 0.0 <= lower <= successes / n <= upper <= 1.0


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        ([1, 2, 3, 4], 95, 3.85),
        ([1, 2, 3, 4], 50, 2.5),
        ([10, 20], 25, 12.5),
        ([4, 1, 3], 0, 1),
        ([4, 1, 3], 100, 4),
        ([7], 95, 7),
    ],
)
def test_percentile_interpolates_like_numpy(values: list[float], p: float, expected: float) -> None:
    assert percentile(values, p) == pytest.approx(expected)


def test_percentile_and_median_of_nothing_are_none() -> None:
    assert percentile([], 95) is None
    assert median([]) is None


def test_median_accepts_any_iterable() -> None:
    assert median(x for x in (3.0, 1.0, 2.0)) == 2.0


@pytest.mark.parametrize("p", [-1, 100.5])
def test_percentile_rejects_p_outside_0_100(p: float) -> None:
    with pytest.raises(ValueError):
        percentile([1.0], p)


@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=50),
    st.floats(0, 100),
    st.floats(0, 100),
)
def test_percentile_is_within_range_and_monotone_in_p(
    values: list[float], a: float, b: float
) -> None:
    low, high = sorted((a, b))
    p_low, p_high = percentile(values, low), percentile(values, high)
    assert p_low is not None and p_high is not None
    assert min(values) <= p_low <= p_high + 1e-6 <= max(values) + 1e-6


# ---------------------------------------------------------------- trial builders


def direction(loss_pct: float = 0.0, jitter_ms: float = 1.0) -> DirectionStats:
    return DirectionStats(
        sent=250, received=250, expected=250, loss_pct=loss_pct, jitter_ms=jitter_ms
    )


def call_trial(
    trial: int = 0,
    *,
    outcome: str = "ok",
    setup_ok: bool = True,
    r: float | None = 93.2,
    pdd_ms: float | None = 80.0,
    setup_ms: float | None = 120.0,
    up: DirectionStats | None = None,
    down: DirectionStats | None = None,
    censor: str = "open",
    tool: str = "direct",
    app: str = "sip",
) -> TrialResult:
    return TrialResult(
        run_id="r1",
        scenario="unit",
        censor=censor,
        tool=tool,
        app=app,
        trial=trial,
        started_at="2026-01-01T00:00:00Z",
        outcome=outcome,
        call=CallMetrics(
            registered=True,
            setup_ok=setup_ok,
            final_status=200 if setup_ok else 403,
            pdd_ms=pdd_ms,
            setup_ms=setup_ms if setup_ok else None,
            up=up or direction(),
            down=down or direction(),
            r_factor=r if setup_ok else None,
        ),
    )


def message_trial(
    trial: int = 0,
    *,
    outcome: str = "ok",
    connected: bool = True,
    sent: int = 10,
    delivered: int = 10,
    connect_ms: float | None = 50.0,
    app: str = "xmpp",
) -> TrialResult:
    return TrialResult(
        run_id="r1",
        scenario="unit",
        censor="open",
        tool="direct",
        app=app,
        trial=trial,
        started_at="2026-01-01T00:00:00Z",
        outcome=outcome,
        message=MessageMetrics(
            connected=connected, connect_ms=connect_ms, sent=sent, delivered=delivered
        ),
    )


def bare_trial(trial: int = 0, outcome: str = "tool-failure", app: str = "sip") -> TrialResult:
    """A trial that ended before the app ran: no call or message metrics at all."""
    return TrialResult(
        run_id="r1",
        scenario="unit",
        censor="open",
        tool="shadowsocks",
        app=app,
        trial=trial,
        started_at="2026-01-01T00:00:00Z",
        outcome=outcome,
        error="ss-local exited",
    )


def calls(n: int, **kw: object) -> list[TrialResult]:
    return [call_trial(i, **kw) for i in range(n)]  # type: ignore[arg-type]


# ---------------------------------------------------------------- thresholds


def test_threshold_defaults_are_the_proposed_ones() -> None:
    assert Thresholds().model_dump() == {
        "works_min_cssr_lower": 0.8,
        "works_min_r": 70.0,
        "works_max_pdd_p95_ms": 5000.0,
        "works_min_delivery": 0.95,
        "works_min_throughput_mbps": 2.0,
        "works_max_load_p95_ms": 5000.0,
        "blocked_max_cssr_upper": 0.2,
        "media_blocked_max_r": 50.0,
        "blocked_max_delivery": 0.2,
        "max_fault_share": 0.2,
    }


def test_thresholds_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        Thresholds(works_min_mos=3.6)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "bad",
    [
        {"blocked_max_cssr_upper": 0.9},
        {"media_blocked_max_r": 80},
        {"blocked_max_delivery": 0.99},
        {"works_min_cssr_lower": 1.5},
        {"works_max_pdd_p95_ms": 0},
    ],
)
def test_thresholds_reject_inconsistent_limits(bad: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Thresholds(**bad)


# ---------------------------------------------------------------- call verdicts


def test_calls_that_all_set_up_with_good_audio_work() -> None:
    score = score_cell(calls(20), Thresholds())
    assert score.verdict == "works"
    assert (score.kind, score.trials, score.successes, score.cssr) == ("call", 20, 20, 1.0)
    assert score.cssr_ci == pytest.approx([0.8389, 1.0], abs=1e-4)
    assert score.r_median == 93.2 and score.r70_share == 1.0
    assert score.mos_median == pytest.approx(4.409, abs=1e-3)
    assert score.delivery_ratio is None
    assert "20/20 calls set up" in score.reason and "median R 93.2" in score.reason


def test_calls_refused_by_the_censor_are_signalling_blocked() -> None:
    trials = calls(20, outcome="sip-4xx", setup_ok=False)
    score = score_cell(trials)
    assert score.verdict == "signalling-blocked"
    assert score.successes == 0 and score.r_median is None and score.mos_median is None
    assert score.outcomes == {"sip-4xx": 20}
    assert "0/20 calls set up" in score.reason and "upper bound < 0.20" in score.reason


def test_five_refused_calls_are_too_few_to_call_blocked() -> None:
    # With the proposed limits a fully refused cell needs 16 trials to be "blocked".
    score = score_cell(calls(5, outcome="timeout", setup_ok=False))
    assert score.verdict == "inconclusive"
    assert "too few trials" in score.reason and "0.43" in score.reason
    assert "11 more trials like these would decide signalling-blocked" in score.reason


def test_five_perfect_calls_are_too_few_to_call_works() -> None:
    score = score_cell(calls(5))
    assert score.verdict == "inconclusive"
    assert "CI lower bound 0.57 < 0.80" in score.reason
    assert "11 more trials like these would decide works" in score.reason


def test_set_up_calls_with_poor_audio_are_media_blocked() -> None:
    score = score_cell(calls(20, r=30.0))
    assert score.verdict == "media-blocked"
    assert "median R 30.0 < 50" in score.reason


def test_set_up_calls_without_r_count_as_r_zero() -> None:
    score = score_cell(calls(20, outcome="no-media", r=None))
    assert score.verdict == "media-blocked"
    assert score.r_median == 0.0 and score.mos_median == 1.0 and score.r70_share == 0.0
    assert "20 of 20 had no media" in score.reason


def test_most_set_up_calls_without_media_is_media_blocked_even_with_a_good_median_r() -> None:
    trials = calls(9) + [call_trial(9 + i, outcome="no-media", r=93.2) for i in range(11)]
    score = score_cell(trials)
    assert score.verdict == "media-blocked"
    assert score.outcomes == {"ok": 9, "no-media": 11}
    assert "11 of 20 had no media" in score.reason


def test_calls_with_middling_r_are_degraded() -> None:
    score = score_cell(calls(20, r=60.0))
    assert score.verdict == "degraded"
    assert "median R 60.0 < 70" in score.reason


def test_calls_with_slow_ringing_are_degraded() -> None:
    score = score_cell(calls(20, pdd_ms=6000.0))
    assert score.verdict == "degraded"
    assert score.pdd_ms_p95 == 6000.0
    assert "p95 PDD 6000 ms > 5000 ms" in score.reason


def test_calls_that_sometimes_fail_are_inconclusive_until_works_is_ruled_out() -> None:
    # 14/20 points at degraded, but its interval [0.48, 0.85] still reaches works' 0.80.
    trials = calls(14) + [call_trial(14 + i, outcome="reset", setup_ok=False) for i in range(6)]
    score = score_cell(trials)
    assert score.verdict == "inconclusive"
    assert score.cssr == 0.7 and score.successes == 14
    assert score.cssr_ci == pytest.approx([0.4810, 0.8545], abs=1e-4)
    assert "too few trials to say degraded (CI upper bound 0.85 >= 0.80)" in score.reason
    assert "42 more trials like these would decide degraded" in score.reason
    assert wilson_interval_of_ratio(0.7, 62)[1] < 0.8 <= wilson_interval_of_ratio(0.7, 61)[1]


def test_calls_that_sometimes_fail_are_degraded_once_the_interval_rules_out_works() -> None:
    trials = calls(70) + [call_trial(70 + i, outcome="reset", setup_ok=False) for i in range(30)]
    score = score_cell(trials)
    assert score.verdict == "degraded"
    assert score.cssr_ci == pytest.approx([0.6041, 0.7810], abs=1e-4)
    assert "misses works: CI upper bound 0.78 < 0.80" in score.reason


def test_tool_failures_count_as_failed_calls() -> None:
    score = score_cell([bare_trial(i) for i in range(20)], kind="call")
    assert score.verdict == "signalling-blocked"
    assert score.outcomes == {"tool-failure": 20}
    assert score.reason.endswith("; 20 tool failures.")


def test_a_tool_failure_never_counts_as_set_up() -> None:
    trials = [*calls(19), call_trial(19, outcome="tool-failure")]
    score = score_cell(trials)
    assert score.successes == 19
    assert score.reason.endswith("; 1 tool failure.")


def test_call_figures_take_the_worse_direction_and_set_up_calls_only() -> None:
    trials = [
        call_trial(0, r=90.0, setup_ms=100.0, up=direction(1.0, 2.0), down=direction(3.0, 1.0)),
        call_trial(1, r=80.0, setup_ms=200.0, up=direction(2.0, 5.0), down=direction(0.0, 4.0)),
        call_trial(2, r=60.0, setup_ms=300.0, up=direction(0.5, 1.0), down=direction(6.0, 9.0)),
        call_trial(3, outcome="timeout", setup_ok=False, pdd_ms=None),
    ]
    score = score_cell(trials)
    assert score.loss_pct_median == 3.0  # worse directions 3, 2, 6
    assert score.jitter_ms_median == 5.0  # worse directions 2, 5, 9
    assert score.setup_ms_p50 == 200.0 and score.setup_ms_p95 == 290.0
    assert score.r_median == 80.0 and score.r70_share == pytest.approx(0.6667, abs=1e-4)
    assert score.pdd_ms_p95 == 80.0


def test_custom_thresholds_change_the_verdict() -> None:
    lenient = Thresholds(works_min_cssr_lower=0.5, blocked_max_cssr_upper=0.45)
    assert score_cell(calls(5), lenient).verdict == "works"
    assert score_cell(calls(5, outcome="timeout", setup_ok=False), lenient).verdict == (
        "signalling-blocked"
    )


# ---------------------------------------------------------------- message verdicts


def test_messages_that_all_arrive_work() -> None:
    score = score_cell([message_trial(i) for i in range(20)])
    assert score.verdict == "works"
    assert score.kind == "message" and score.delivery_ratio == 1.0
    assert score.setup_ms_p50 == 50.0 and score.r_median is None and score.pdd_ms_p95 is None
    assert "200/200 messages delivered (100%)" in score.reason


def test_messages_that_mostly_vanish_are_blocked() -> None:
    score = score_cell([message_trial(i, delivered=1) for i in range(20)])
    assert score.verdict == "blocked"
    assert score.delivery_ratio == 0.1
    assert "delivery 10% < 20%" in score.reason


def test_sessions_that_never_connect_are_blocked() -> None:
    trials = [
        message_trial(i, outcome="reset", connected=False, sent=0, delivered=0) for i in range(16)
    ]
    score = score_cell(trials)
    assert score.verdict == "blocked"
    # No session connected, so no message was sent: delivery was not measured at all.
    assert score.delivery_ratio is None and score.successes == 0
    assert "0/16 sessions connected" in score.reason and "no message sent" in score.reason


def test_five_sessions_that_never_connect_are_too_few_to_call_blocked() -> None:
    trials = [
        message_trial(i, outcome="reset", connected=False, sent=0, delivered=0) for i in range(5)
    ]
    score = score_cell(trials)
    assert score.verdict == "inconclusive"
    assert score.delivery_ratio is None and score.successes == 0
    assert "too few trials to say blocked (CI upper bound 0.43 >= 0.20)" in score.reason
    assert "11 more trials like these would decide blocked" in score.reason


def test_messages_with_some_losses_are_degraded() -> None:
    score = score_cell([message_trial(i, delivered=9) for i in range(20)])
    assert score.verdict == "degraded"
    assert "delivery 90% < 95%" in score.reason


def test_message_tool_failures_are_blocked_given_the_kind() -> None:
    score = score_cell([bare_trial(i, app="xmpp") for i in range(16)], kind="message")
    assert score.verdict == "blocked" and score.kind == "message"
    few = score_cell([bare_trial(i, app="xmpp") for i in range(3)], kind="message")
    assert few.verdict == "inconclusive" and few.kind == "message"


# ---------------------------------------------------------------- cells


def test_score_cells_groups_by_cell_in_first_seen_order() -> None:
    results = [
        call_trial(0, censor="open"),
        message_trial(0),
        call_trial(0, censor="sip-blocked", outcome="sip-4xx", setup_ok=False),
        call_trial(1, censor="open"),
    ]
    cells = score_cells(results, Thresholds())
    assert [(c.censor, c.app, c.trials) for c in cells] == [
        ("open", "sip", 2),
        ("open", "xmpp", 1),
        ("sip-blocked", "sip", 1),
    ]


def test_score_cells_uses_declared_kinds_for_cells_without_metrics() -> None:
    cells = score_cells([bare_trial(i, app="xmpp") for i in range(3)], kinds={"xmpp": "message"})
    assert cells[0].kind == "message"


def test_declared_kind_must_agree_with_the_trials() -> None:
    with pytest.raises(ValueError, match="declared message"):
        score_cell(calls(3), kind="message")


def test_a_cell_cannot_mix_calls_and_messages() -> None:
    with pytest.raises(ValueError, match="mixes"):
        score_cell([call_trial(0, app="x"), message_trial(1, app="x")])


def test_score_cell_rejects_trials_of_several_cells_or_none() -> None:
    with pytest.raises(ValueError):
        score_cell([call_trial(0), call_trial(1, censor="other")])
    with pytest.raises(ValueError):
        score_cell([])


def test_cell_score_is_plain_json() -> None:
    score = score_cell(calls(3))
    assert CellScore.model_validate(json.loads(score.model_dump_json())) == score


# ---------------------------------------------------------------- enough trials to say so


def test_three_clean_calls_are_inconclusive_and_say_how_many_more_would_decide() -> None:
    score = score_cell(calls(3))
    assert score.verdict == "inconclusive"
    assert score.reason == (
        "3/3 calls set up (CSSR 1.00, 95% CI 0.44-1.00), median R 93.2: too few trials to "
        "say works (CI lower bound 0.44 < 0.80); 13 more trials like these would decide works."
    )
    assert more_trials_to_decide(3, 3, Thresholds()) == 13
    # 13 more is the fewest: 16/16 has a Wilson lower bound of 0.806, 15/15 of 0.796.
    assert wilson_interval(16, 16)[0] >= 0.8 > wilson_interval(15, 15)[0]


def test_sixteen_clean_calls_work() -> None:
    score = score_cell(calls(16))
    assert score.verdict == "works"
    assert score.cssr_ci == pytest.approx([0.8064, 1.0], abs=1e-4)


def test_three_calls_that_never_set_up_are_inconclusive_not_blocked() -> None:
    score = score_cell(calls(3, outcome="timeout", setup_ok=False))
    assert score.verdict == "inconclusive"
    assert score.reason == (
        "0/3 calls set up (CSSR 0.00, 95% CI 0.00-0.56): too few trials to say "
        "signalling-blocked (CI upper bound 0.56 >= 0.20); 13 more trials like these would "
        "decide signalling-blocked."
    )
    assert wilson_interval(0, 16)[1] < 0.2 <= wilson_interval(0, 15)[1]


def test_sixteen_calls_that_never_set_up_are_signalling_blocked() -> None:
    score = score_cell(calls(16, outcome="timeout", setup_ok=False))
    assert score.verdict == "signalling-blocked"
    assert "0/16 calls set up" in score.reason and "upper bound < 0.20" in score.reason


def test_a_ratio_right_on_a_limit_is_never_decided() -> None:
    # 4/5 = 0.8 points at works, but no interval around 0.8 lies wholly above 0.8.
    trials = [*calls(4), call_trial(4, outcome="reset", setup_ok=False)]
    score = score_cell(trials)
    assert score.verdict == "inconclusive"
    assert more_trials_to_decide(4, 5, Thresholds()) is None
    assert "more trials like these would never decide works (never at this ratio)" in score.reason


def test_a_middling_ratio_whose_interval_reaches_blocked_is_inconclusive() -> None:
    trials = calls(1) + [call_trial(1 + i, outcome="reset", setup_ok=False) for i in range(3)]
    score = score_cell(trials, Thresholds(works_min_cssr_lower=0.9))
    assert score.verdict == "inconclusive"  # 1/4 = 0.25: degraded, if the trials said so
    # The upper bound 0.70 already rules out works (0.90); the lower one has not ruled out
    # blocked, and at 0.25, only 0.05 above the limit, it takes many more trials to.
    assert "too few trials to say degraded (CI lower bound 0.05 < 0.20); 242 more" in score.reason
    assert (
        wilson_interval_of_ratio(0.25, 4 + 242)[0]
        >= 0.2
        > wilson_interval_of_ratio(0.25, 4 + 241)[0]
    )


def test_measured_quality_decides_with_few_calls_as_before() -> None:
    assert score_cell(calls(3, r=30.0)).verdict == "media-blocked"
    assert score_cell(calls(3, outcome="no-media", r=None)).verdict == "media-blocked"
    poor = score_cell(calls(3, r=60.0))
    assert poor.verdict == "degraded" and "median R 60.0 < 70" in poor.reason
    slow = score_cell(calls(3, pdd_ms=6000.0))
    assert slow.verdict == "degraded" and "p95 PDD 6000 ms > 5000 ms" in slow.reason


def test_quality_of_a_few_calls_does_not_hide_a_cell_that_points_at_blocked() -> None:
    # 1 of 10 set up: the ratio points at signalling-blocked; its middling R is not the story.
    trials = [call_trial(0, r=60.0)] + [
        call_trial(1 + i, outcome="timeout", setup_ok=False) for i in range(9)
    ]
    score = score_cell(trials)
    assert score.verdict == "inconclusive"
    assert "would decide signalling-blocked" in score.reason


def test_three_sessions_with_every_message_delivered_are_inconclusive() -> None:
    score = score_cell([message_trial(i) for i in range(3)])
    assert score.verdict == "inconclusive"
    assert "30/30 messages delivered (100%)" in score.reason
    assert "13 more trials like these would decide works" in score.reason
    assert score_cell([message_trial(i) for i in range(16)]).verdict == "works"


def test_messages_measured_as_lost_decide_with_few_sessions() -> None:
    vanished = score_cell([message_trial(i, delivered=1) for i in range(3)])
    assert vanished.verdict == "blocked" and "delivery 10% < 20%" in vanished.reason
    lossy = score_cell([message_trial(i, delivered=9) for i in range(3)])
    assert lossy.verdict == "degraded" and "delivery 90% < 95%" in lossy.reason


def test_sessions_that_sometimes_fail_are_degraded_once_the_interval_rules_out_works() -> None:
    trials = [message_trial(i) for i in range(70)] + [
        message_trial(70 + i, outcome="reset", connected=False, sent=0, delivered=0)
        for i in range(30)
    ]
    score = score_cell(trials)
    assert score.verdict == "degraded"
    assert "misses works: CI upper bound 0.78 < 0.80" in score.reason
    few = score_cell(trials[:7] + trials[70:73])  # 7/10: the same ratio, too few sessions
    assert few.verdict == "inconclusive" and "would decide degraded" in few.reason


# ---------------------------------------------------------------- harness faults

LENIENT = Thresholds(works_min_cssr_lower=0.5, blocked_max_cssr_upper=0.5)


def fault_trial(
    trial: int = 0,
    *,
    attempt: int = 0,
    kind: str = "server-not-ready",
    phase: str = "servers",
    detail: str = "ProcessFailed: kamailio exited with status 1\nstderr: bind failed",
) -> TrialResult:
    """An attempt that ended in a harness fault, as the runner records one."""
    return TrialResult(
        run_id="r1",
        scenario="unit",
        censor="open",
        tool="direct",
        app="sip",
        trial=trial,
        started_at="2026-01-01T00:00:00Z",
        outcome="harness-fault",
        error=detail,
        fault=Fault(phase=phase, kind=kind, detail=detail),  # type: ignore[arg-type]
        attempt=attempt,
    )


def test_one_fault_in_five_trials_is_left_out_and_the_cell_scored_on_four() -> None:
    score = score_cell([*calls(4), fault_trial(4)], LENIENT)
    assert score.verdict == "works"
    assert (score.trials, score.valid_trials, score.successes) == (5, 4, 4)
    assert score.cssr == 1.0 and score.cssr_ci == pytest.approx([0.5101, 1.0], abs=1e-4)
    assert (score.faults, score.fault_attempts) == (1, 1)
    assert score.fault_kinds == {"server-not-ready": 1}
    assert score.outcomes == {"ok": 4, "harness-fault": 1}
    assert "4/4 calls set up" in score.reason
    assert "harness faults (not censorship): 1 trial not scored (server-not-ready 1)" in (
        score.reason
    )


def test_a_fault_is_never_a_failed_call() -> None:
    # 16 set up and 3 faults: scored as 16/16 (works); as failures 16/19 would not be.
    score = score_cell([*calls(16), *(fault_trial(16 + i) for i in range(3))])
    assert score.verdict == "works" and score.cssr == 1.0 and score.valid_trials == 16
    assert wilson_interval(16, 19)[0] < 0.8


def test_two_faults_in_five_trials_make_the_cell_invalid_naming_the_fault() -> None:
    score = score_cell([*calls(3), fault_trial(3), fault_trial(4)], LENIENT)
    assert score.verdict == "invalid"
    assert score.reason == (
        "2 of 5 trials ended in a harness fault (40% > 20% allowed), most often "
        "server-not-ready in servers (2x): ProcessFailed: kamailio exited with status 1; "
        "no verdict (the figures are of the 3 valid trials)."
    )
    assert (score.faults, score.fault_attempts, score.valid_trials) == (2, 2, 3)
    assert score.successes == 3 and score.cssr == 1.0  # the valid trials' figures stay


def test_the_most_common_fault_kind_is_named() -> None:
    trials = [
        *calls(2),
        fault_trial(2, kind="agent-crashed", phase="app", detail="sip agent: KeyError"),
        fault_trial(3, kind="agent-crashed", phase="app", detail="sip agent: KeyError"),
        fault_trial(4),
    ]
    score = score_cell(trials)
    assert score.verdict == "invalid"
    assert "most often agent-crashed in app (2x): sip agent: KeyError" in score.reason
    assert score.fault_kinds == {"agent-crashed": 2, "server-not-ready": 1}


def test_retried_faults_are_counted_but_not_scored() -> None:
    trials = [*calls(5), fault_trial(2, attempt=0), fault_trial(2, attempt=1)]
    trials[2] = call_trial(2)
    trials[2].attempt = 2  # the third attempt of trial 2 set up
    score = score_cell(trials, LENIENT)
    assert score.verdict == "works"
    assert (score.trials, score.valid_trials, score.successes) == (5, 5, 5)
    assert (score.faults, score.fault_attempts) == (0, 2)
    assert score.fault_kinds == {"server-not-ready": 2}
    assert score.outcomes == {"ok": 5}
    assert "harness faults (not censorship): 2 attempts retried (server-not-ready 2)" in (
        score.reason
    )


def test_a_trial_whose_retries_all_faulted_counts_once_as_a_fault() -> None:
    trials = [*calls(9), *(fault_trial(9, attempt=a) for a in range(3))]
    score = score_cell(trials, LENIENT)
    assert (score.trials, score.valid_trials, score.faults, score.fault_attempts) == (
        10, 9, 1, 3
    )  # fmt: skip
    assert score.verdict == "works"
    assert "1 trial not scored, 2 attempts retried (server-not-ready 3)" in score.reason


def test_a_cell_of_faults_only_is_invalid_with_nothing_measured() -> None:
    score = score_cell([fault_trial(i) for i in range(3)], kind="call")
    assert score.verdict == "invalid" and score.kind == "call"
    assert (score.valid_trials, score.successes, score.cssr, score.cssr_ci) == (0, 0, 0.0, [0, 1])
    assert score.r_median is None and score.mos_median is None
    assert "3 of 3 trials ended in a harness fault (no valid trial left)" in score.reason
    messages = score_cell([fault_trial(0)], kind="message")
    assert messages.verdict == "invalid" and messages.delivery_ratio is None


def test_max_fault_share_is_a_threshold() -> None:
    trials = [*calls(3), fault_trial(3), fault_trial(4)]
    assert score_cell(trials, LENIENT).verdict == "invalid"
    tolerant = LENIENT.model_copy(update={"max_fault_share": 0.4})
    assert score_cell(trials, tolerant).verdict == "inconclusive"  # 3/3 valid, lower 0.44
    with pytest.raises(ValidationError):
        Thresholds(max_fault_share=1.5)


def test_a_fault_record_without_its_fault_is_still_named() -> None:
    bare = fault_trial(0)
    bare.fault, bare.error = None, "agent gave no result"
    score = score_cell([bare], kind="call")
    assert score.verdict == "invalid"
    assert "unspecified in unknown phase (1x): agent gave no result" in score.reason


def test_score_cells_counts_each_cells_fault_attempts() -> None:
    other = [call_trial(i, censor="blocked") for i in range(2)]
    results = [fault_trial(0), *calls(2), *other]
    results[1].attempt = 1  # trial 0 set up on its retry
    cells = {c.censor: c for c in score_cells(results)}
    assert cells["open"].fault_attempts == 1 and cells["open"].trials == 2
    assert cells["blocked"].fault_attempts == 0 and cells["blocked"].fault_kinds == {}
