"""active_probe's judgement of probe results, its kernel rules and its bad-input errors.
(The probes themselves, against real servers, are in tests/e2e/test_active_probe.py.)"""

from __future__ import annotations

import pytest

from censor_sims.technique import CensorContext, KernelPlan
from censor_sims.techniques.active_probe import ActiveProbe, ProbeResult, judge, recent_list
from harness.scenario import ScenarioError, parse_scenario


def _r(kind: str, length: int, outcome: str, received: int = 0) -> ProbeResult:
    return ProbeResult(kind, length, outcome, received, 1.0)


def test_replay_answered_with_data_is_a_proxy() -> None:
    results = [_r("replay", 300, "data", 300), _r("random", 8, "timeout")]
    assert "replayed first packet with 300 bytes" in judge(results, ["replay_data"])


def test_silence_everywhere_is_no_proxy() -> None:
    results = [
        _r("replay", 300, "timeout"),
        _r("random", 8, "timeout"),
        _r("random", 50, "timeout"),
    ]
    assert judge(results, ["replay_data", "length_threshold"]) is None


def test_length_threshold_needs_silent_short_and_closed_long_probes() -> None:
    threshold = [_r("random", 8, "timeout"), _r("random", 50, "rst"), _r("random", 221, "fin")]
    assert "silent up to 8" in judge(threshold, ["length_threshold"])
    assert judge(threshold, ["replay_data"]) is None  # criterion not asked for
    mixed = [_r("random", 8, "rst"), _r("random", 50, "timeout"), _r("random", 221, "fin")]
    assert judge(mixed, ["length_threshold"]) is None
    http_like = [_r("random", 8, "data", 120), _r("random", 50, "data", 120)]
    assert judge(http_like, ["length_threshold"]) is None


def test_compiles_xt_recent_drops_both_ways_and_asks_for_the_engine() -> None:
    plan = KernelPlan()
    ActiveProbe(name="gfw probe", block=90).compile(CensorContext({}), plan)
    assert plan.engine
    specs = [r.spec for r in plan.rules]
    assert [s[s.index("--rcheck") + 1] for s in specs] == ["--rdest", "--rsource"]
    assert all(s[s.index("--name") + 1] == recent_list("gfw probe") == "gc-probe-gfw_probe"
               for s in specs)  # fmt: skip
    assert all(s[s.index("--seconds") + 1] == "90" and s[-2:] == ["-j", "DROP"] for s in specs)


def test_analyzers_follow_the_triggers() -> None:
    assert ActiveProbe().analyzers == ("fet",)
    assert ActiveProbe(triggers=["ssh", "openvpn"]).analyzers == ("ssh", "openvpn")


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            "{type: active_probe, replay: 2}",
            "unknown key 'replay' (did you mean 'replays'?); valid keys:",
        ),
        ("{type: active_probe, criteria: [echo]}", "replay_data"),
        ("{type: active_probe, triggers: [telnet]}", "fet"),
        ("{type: active_probe, random_lengths: [0]}", "0 is out of range: must be at least 1"),
    ],
)
def test_bad_input_names_file_line_and_valid_choices(spec: str, expected: str) -> None:
    text = f"name: ap\napps: [sip]\ntools: [direct]\ncensors:\n  ap:\n    - {spec}\n"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "ap.yaml")
    problem = info.value.problems[0]
    assert problem.startswith("ap.yaml:6:") and expected in problem, problem
