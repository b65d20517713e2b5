"""Scenario validation: errors name file, line and column, and list the valid choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.scenario import ScenarioError, load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: t
trials: 2
apps: [sip, xmpp]
tools: [direct, shadowsocks]
censors:
  open: []
  blocked: [{type: port_block, proto: udp, ports: [5060]}]
expect:
  - {censor: blocked, tool: direct, app: sip, verdict: signalling-blocked}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "s.yaml")
    return info.value.problems


def test_shipped_scenarios_validate() -> None:
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        scenario = load_scenario(path)
        assert scenario.cells()


def test_good_scenario_has_cells_in_order() -> None:
    s = parse_scenario(GOOD)
    assert s.cells()[0] == ("open", "direct", "sip")
    assert len(s.cells()) == 8
    assert s.expect[0].accepts("signalling-blocked")


def test_unknown_technique_type_names_line_and_choices() -> None:
    text = GOOD.replace("type: port_block", "type: port_blok")
    (msg,) = problems(text)
    assert msg.startswith("s.yaml:7:")
    assert "port_blok" in msg and "port_block" in msg and "udp_throttle" in msg


def test_unknown_technique_parameter_lists_valid_keys() -> None:
    text = GOOD.replace("ports: [5060]", "ports: [5060], prot: tcp")
    (msg,) = problems(text)
    assert msg.startswith("s.yaml:7:")
    assert "unknown key 'prot'" in msg
    assert "proto" in msg and "ports" in msg and "probability" in msg


def test_unknown_tool_lists_tools() -> None:
    (msg,) = problems(GOOD.replace("[direct, shadowsocks]", "[direct, shadowsox]"))
    assert msg.startswith("s.yaml:4:")
    assert "shadowsox" in msg and "direct" in msg and "shadowsocks" in msg


def test_unknown_app_lists_apps() -> None:
    (msg,) = problems(GOOD.replace("[sip, xmpp]", "[sip, skype]"))
    assert msg.startswith("s.yaml:3:") and "skype" in msg and "xmpp" in msg


def test_unknown_top_level_key_lists_keys() -> None:
    (msg,) = problems(GOOD + "trails: 3\n")
    assert msg.startswith("s.yaml:10:1:")
    assert "unknown key 'trails'" in msg and "trials" in msg


def test_expectation_must_name_a_cell() -> None:
    (msg,) = problems(GOOD.replace("censor: blocked", "censor: blokked"))
    assert "blokked" in msg and "open, blocked" in msg


def test_bad_verdict_and_bad_rate() -> None:
    msgs = problems(
        GOOD.replace("signalling-blocked", "kaput").replace(
            "open: []", "open: [{type: udp_throttle, rate: fast}]"
        )
    )
    joined = "\n".join(msgs)
    assert "kaput" in joined and "works" in joined
    assert "rate 'fast'" in joined and "kbit" in joined
    assert "s.yaml:6:" in joined


def test_duplicate_key_and_yaml_syntax() -> None:
    (msg,) = problems(GOOD + "trials: 4\n")
    assert msg.startswith("s.yaml:10:1:") and "twice" in msg
    (msg,) = problems("name: [unclosed\n")
    assert msg.startswith("s.yaml:2:") and "YAML" in msg


def test_missing_required_key() -> None:
    (msg,) = problems(GOOD.replace("tools: [direct, shadowsocks]\n", ""))
    assert "missing required key 'tools'" in msg


def test_missing_file() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario("/nonexistent/s.yaml")
    assert "/nonexistent/s.yaml" in str(info.value)
