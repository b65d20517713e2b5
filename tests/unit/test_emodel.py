"""The E-model against test vectors computed from ITU-T G.107 (06/2015)."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.scoring.emodel import (
    CODECS,
    EModelParams,
    burst_r_from_markov,
    get_codec,
    impairments,
    mos_from_r,
    r_factor,
    score_call,
)

G711 = {"ie": 0.0, "bpl": 4.3}
G711_PLC = {"ie": 0.0, "bpl": 25.1}

# (condition, parameters that differ from the G.107 defaults, R, MOS)
VECTORS = [
    ("defaults", {}, 93.2062, 4.4094),
    ("G.711 no PLC, Ppl 1", {**G711, "ppl_pct": 1}, 75.2817, 3.8339),
    ("G.711 no PLC, Ppl 2", {**G711, "ppl_pct": 2}, 63.0475, 3.2564),
    ("G.711 PLC, Ppl 1", {**G711_PLC, "ppl_pct": 1}, 89.5664, 4.3282),
    ("G.711 PLC, Ppl 5", {**G711_PLC, "ppl_pct": 5}, 77.4255, 3.9231),
    ("G.711 PLC, Ppl 5, BurstR 2", {**G711_PLC, "ppl_pct": 5, "burst_r": 2}, 75.9961, 3.8641),
    ("G.729A, Ppl 0", {"ie": 11.0, "bpl": 19.0}, 82.2062, 4.1046),
    ("Ta 200 ms only", {"ta_ms": 200}, 90.1618, 4.3429),
    ("Ta 300 ms only", {"ta_ms": 300}, 78.4455, 3.9639),
    ("T = Ta = 300, Tr = 600", {"t_ms": 300, "ta_ms": 300, "tr_ms": 600}, 72.6664, 3.7194),
]


@pytest.mark.parametrize(
    ("overrides", "r", "mos"), [v[1:] for v in VECTORS], ids=[v[0] for v in VECTORS]
)
def test_r_and_mos_match_the_test_vectors(
    overrides: dict[str, float], r: float, mos: float
) -> None:
    got = r_factor(EModelParams(**overrides))
    assert got == pytest.approx(r, abs=1e-3)
    assert mos_from_r(got) == pytest.approx(mos, abs=1e-3)


def test_default_terms_are_computed_not_hard_coded() -> None:
    terms = impairments(EModelParams())
    assert terms.ro == pytest.approx(94.7688, abs=1e-4)
    assert terms.is_ == pytest.approx(1.4136, abs=1e-4)
    assert terms.idle == pytest.approx(0.1490, abs=1e-4)
    assert terms.idte == 0.0  # T = 0: talker echo is sidetone
    assert terms.idd == 0.0
    assert terms.ie_eff == 0.0


@pytest.mark.parametrize(("ta_ms", "idd"), [(100, 0.0), (200, 3.0444), (300, 14.7607)])
def test_idd_of_absolute_delay(ta_ms: float, idd: float) -> None:
    assert impairments(EModelParams(ta_ms=ta_ms)).idd == pytest.approx(idd, abs=1e-4)


def test_echo_terms_carry_the_difference_of_the_delayed_echo_vector() -> None:
    no_echo = impairments(EModelParams(ta_ms=300))
    echo = impairments(EModelParams(t_ms=300, ta_ms=300, tr_ms=600))
    assert echo.idte == pytest.approx(4.8339, abs=1e-4)
    assert echo.idle == pytest.approx(1.0943, abs=1e-4)
    assert no_echo.r - echo.r == pytest.approx(
        echo.idte + echo.idle - no_echo.idle + echo.is_ - no_echo.is_
    )


def test_talker_echo_below_one_millisecond_counts_as_sidetone() -> None:
    assert impairments(EModelParams(t_ms=0.5)).idte == 0.0
    assert impairments(EModelParams(t_ms=1.0)).idte != 0.0


def test_r_steps_up_at_one_millisecond_as_g107_does() -> None:
    # Idte's "- 1" makes it slightly negative at short T (-0.109 at 1 ms) and G.107 sets
    # it to 0 below 1 ms: R rises by 0.109 there, the only place where more delay helps.
    step = score_call(0, 1, 1.0)[0] - score_call(0, 1, 0.999)[0]
    assert step == pytest.approx(0.109, abs=1e-3)


def test_weak_sidetone_adds_its_impairment_to_talker_echo() -> None:
    assert impairments(EModelParams(stmr=25)).idte > 0.0
    assert r_factor(EModelParams(stmr=25)) < r_factor(EModelParams())


def test_strong_sidetone_changes_echo_threshold() -> None:
    loud = impairments(EModelParams(stmr=8, t_ms=100))
    normal = impairments(EModelParams(stmr=15, t_ms=100))
    assert loud.idte != normal.idte


@pytest.mark.parametrize(
    ("loss_pct", "burst_r", "delay_ms", "codec", "r"),
    [
        (0, 1, 0, "g711-plc", 93.2062),
        (1, 1, 0, "g711", 75.2817),
        (5, 2, 0, "g711-plc", 75.9961),
        (0, 1, 0, "g729a-vad", 82.2062),
        (0, 1, 300, "g711-plc", 72.6664),
    ],
)
def test_score_call_maps_measurements_onto_the_vectors(
    loss_pct: float, burst_r: float, delay_ms: float, codec: str, r: float
) -> None:
    got_r, got_mos = score_call(loss_pct, burst_r, delay_ms, codec)
    assert got_r == pytest.approx(r, abs=1e-3)
    assert got_mos == pytest.approx(mos_from_r(r), abs=1e-3)


def test_score_call_rejects_an_unknown_codec_and_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown codec 'amr'.*g711-plc.*opus-nb-research"):
        score_call(0, 1, 0, codec="amr")


def test_codec_table() -> None:
    assert {k: (c.ie, c.bpl) for k, c in CODECS.items()} == {
        "g711": (0.0, 4.3),
        "g711-plc": (0.0, 25.1),
        "g729a-vad": (11.0, 19.0),
        "g723.1-6.3k": (15.0, 16.1),
        "opus-nb-research": (2.03, 15.95),
    }
    assert [k for k, c in CODECS.items() if c.research] == ["opus-nb-research"]
    assert "not ITU" in get_codec("opus-nb-research").source
    with pytest.raises(TypeError):
        CODECS["x"] = CODECS["g711"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("r", "mos"),
    [(-10, 1.0), (0, 1.0), (3.2, 1.0), (50, 2.575), (100, 4.5), (130, 4.5)],
)
def test_mos_from_r_ends_and_floor(r: float, mos: float) -> None:
    assert mos_from_r(r) == pytest.approx(mos, abs=1e-4)


def test_mos_from_r_rejects_nan() -> None:
    with pytest.raises(ValueError):
        mos_from_r(math.nan)


@pytest.mark.parametrize(
    ("p", "q", "burst_r"),
    [(0.0, 0.0, 1.0), (0.0, 0.7, 1.0), (0.1, 0.9, 1.0), (0.05, 0.45, 2.0), (0.2, 0.0, 5.0)],
)
def test_burst_r_from_markov(p: float, q: float, burst_r: float) -> None:
    assert burst_r_from_markov(p, q) == pytest.approx(burst_r)


@pytest.mark.parametrize(("p", "q"), [(-0.1, 0.5), (0.5, 1.5), (math.nan, 0.5)])
def test_burst_r_from_markov_rejects_non_probabilities(p: float, q: float) -> None:
    with pytest.raises(ValueError):
        burst_r_from_markov(p, q)


@pytest.mark.parametrize(
    "bad", [{"ppl_pct": 101}, {"ppl_pct": -1}, {"t_ms": -1}, {"burst_r": 0}, {"qdu": math.inf}]
)
def test_params_reject_values_outside_the_formulas_domain(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        EModelParams(**bad)


def test_params_are_frozen() -> None:
    with pytest.raises(AttributeError):
        EModelParams().ppl_pct = 3  # type: ignore[misc]


codecs = st.sampled_from(sorted(CODECS))
losses = st.floats(0, 100)
bursts = st.floats(0.5, 8)
delays = st.floats(0, 1000)


@given(codecs, bursts, delays, losses, losses)
def test_mos_does_not_rise_with_loss(
    codec: str, burst_r: float, delay: float, a: float, b: float
) -> None:
    low, high = sorted((a, b))
    assert score_call(high, burst_r, delay, codec)[1] <= score_call(low, burst_r, delay, codec)[1]


@given(codecs, losses, bursts, st.floats(1, 1000), st.floats(1, 1000))
def test_r_does_not_rise_with_delay_from_one_millisecond(
    codec: str, loss: float, burst_r: float, a: float, b: float
) -> None:
    short, long = sorted((a, b))
    assert score_call(loss, burst_r, long, codec)[0] <= score_call(loss, burst_r, short, codec)[0]


@given(codecs, losses, delays, bursts, bursts)
def test_r_does_not_rise_with_burstiness(
    codec: str, loss: float, delay: float, a: float, b: float
) -> None:
    random_like, bursty = sorted((a, b))
    assert (
        score_call(loss, bursty, delay, codec)[0] <= score_call(loss, random_like, delay, codec)[0]
    )


@given(st.floats(-50, 150), st.floats(-50, 150))
def test_mos_is_within_scale_and_non_decreasing_in_r(a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert 1.0 <= mos_from_r(low) <= mos_from_r(high) <= 4.5


@given(st.floats(0, 1), st.floats(0, 1))
def test_burst_r_is_positive(p: float, q: float) -> None:
    assert burst_r_from_markov(p, q) >= 0.5


def test_replace_keeps_other_defaults() -> None:
    params = replace(EModelParams(), ppl_pct=2.0)
    assert params.bpl == 4.3 and params.ppl_pct == 2.0
