"""Shards: every trial in exactly one shard, the same plan in every process, balanced by
the documented cost model; how a process learns which shard it runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.registry import app_plugin
from harness.scale.shard import (
    Shard,
    ShardError,
    manifest_for,
    parse_shard,
    plan,
    prepare_shard_dir,
    read_manifest,
    scenario_digest,
    shard_from_args,
    trial_cost_ms,
    trial_keys,
)
from harness.scenario import load_scenario, parse_scenario

REPO = Path(__file__).resolve().parents[2]
MIXED = """\
name: mixed
trials: 3
call_seconds: 5
apps: [sip, xmpp, webrtc]
tools: [direct, shadowsocks, wireguard, shadowsocks+tun]
censors:
  open: []
  blocked: [{type: port_block, proto: udp, ports: [5060]}]
"""


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 72])
def test_every_trial_is_in_exactly_one_shard(count: int) -> None:
    scenario = parse_scenario(MIXED)
    shards = plan(scenario, count)
    flat = [key for shard in shards for key in shard]
    assert len(shards) == count
    assert sorted(flat) == sorted(trial_keys(scenario)) and len(flat) == len(set(flat)) == 72
    for shard in shards:  # each shard runs its trials in the scenario's own order
        order = [trial_keys(scenario).index(k) for k in shard]
        assert order == sorted(order)


def test_the_plan_depends_on_the_scenario_alone() -> None:
    """Two processes (pods) loading the same file compute the same shards."""
    path = REPO / "scenarios/quickstart.yaml"
    first, second = load_scenario(path), load_scenario(path)
    assert plan(first, 4) == plan(second, 4)
    assert scenario_digest(first) == scenario_digest(second)


def test_shards_are_balanced_by_expected_cost() -> None:
    """Greedy longest-processing-time: the spread between the fullest and emptiest shard
    is at most one trial's cost."""
    scenario = parse_scenario(MIXED)
    for count in (2, 3, 5, 8):
        loads = [sum(trial_cost_ms(scenario, *k[:3]) for k in s) for s in plan(scenario, count)]
        biggest = max(trial_cost_ms(scenario, *cell) for cell in scenario.cells())
        assert max(loads) - min(loads) <= biggest, (count, loads)


def test_cost_model_orders_apps_and_tools() -> None:
    scenario = parse_scenario(MIXED)
    cost = trial_cost_ms
    assert cost(scenario, "open", "direct", "sip") == 3000 + 5000 + app_plugin("sip").setup_ms
    assert cost(scenario, "open", "direct", "xmpp") < cost(scenario, "open", "direct", "sip")
    assert cost(scenario, "open", "direct", "sip") < cost(scenario, "open", "direct", "webrtc")
    direct, socks = (
        cost(scenario, "open", "direct", "sip"),
        cost(scenario, "open", "shadowsocks", "sip"),
    )
    tun, tun_mode = (
        cost(scenario, "open", "wireguard", "sip"),
        cost(scenario, "open", "shadowsocks+tun", "sip"),
    )
    assert direct < socks < tun == tun_mode
    assert cost(scenario, "blocked", "direct", "sip") > direct  # a censor with techniques


def test_digest_follows_content_not_formatting() -> None:
    base = parse_scenario(MIXED)
    reformatted = parse_scenario("# a comment\n" + MIXED.replace("trials: 3", "trials:   3"))
    assert scenario_digest(base) == scenario_digest(reformatted)
    assert scenario_digest(base) != scenario_digest(parse_scenario(MIXED.replace("3\n", "4\n", 1)))


def test_parse_shard() -> None:
    assert parse_shard("0/4") == Shard(0, 4) and str(Shard(3, 4)) == "3/4"
    for bad in ("4/4", "1", "a/b", "-1/3", "1/0", "1/2/3"):
        with pytest.raises(ShardError):
            parse_shard(bad)


def test_index_from_an_indexed_job() -> None:
    assert shard_from_args(None, None, {}) is None
    assert shard_from_args(None, 3, {"JOB_COMPLETION_INDEX": "2"}) == Shard(2, 3)
    assert shard_from_args("1/3", None, {"JOB_COMPLETION_INDEX": "2"}) == Shard(1, 3)
    with pytest.raises(ShardError, match="JOB_COMPLETION_INDEX"):
        shard_from_args(None, 3, {})
    with pytest.raises(ShardError, match=r"not in 0\.\.2"):
        shard_from_args(None, 3, {"JOB_COMPLETION_INDEX": "3"})
    with pytest.raises(ShardError, match="disagree"):
        shard_from_args("1/3", 4, {})


def test_shard_dir_records_its_shard_and_refuses_another(tmp_path: Path) -> None:
    scenario = parse_scenario(MIXED)
    written = prepare_shard_dir(tmp_path, scenario, Shard(1, 4))
    read = read_manifest(tmp_path)
    assert read == written == manifest_for(scenario, Shard(1, 4))
    assert read.scenario == "mixed" and list(read.trials) == plan(scenario, 4)[1]
    prepare_shard_dir(tmp_path, scenario, Shard(1, 4))  # the same shard again (resume): fine
    with pytest.raises(ShardError, match="holds shard 1/4"):
        prepare_shard_dir(tmp_path, scenario, Shard(2, 4))


def test_a_broken_manifest_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ShardError, match="missing"):
        read_manifest(tmp_path)
    (tmp_path / "shard.json").write_text('{"format": 1, "shard": 0}')
    with pytest.raises(ShardError, match=r"shard\.json: not a shard manifest"):
        read_manifest(tmp_path)


def test_a_renamed_variant_costs_as_the_tool_it_runs() -> None:
    scenario = parse_scenario(
        "name: v\napps: [xmpp]\ncensors: {open: []}\n"
        "tools: [openvpn-udp, {name: openvpn-udp, as: vpn-tcp, proto: tcp}]\n"
    )
    assert trial_cost_ms(scenario, "open", "vpn-tcp", "xmpp") == trial_cost_ms(
        scenario, "open", "openvpn-udp", "xmpp"
    )
