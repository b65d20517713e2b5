"""The office-vpn bystander's pieces that need no network: its option block (valid
choices named, bounds, defaults), the tools it may run through, names and addresses apart
from the wireguard and openvpn tools', and OpenVPN client logs read as outcomes."""

from __future__ import annotations

import pytest

from harness import registry
from harness.apps.office_vpn import tunnel
from harness.apps.office_vpn.tunnel import openvpn_failure
from harness.scale.shard import plan, trial_cost_ms
from harness.scenario import ScenarioError, parse_scenario
from harness.tools import openvpn, wireguard


def _scenario(block: str = "", tools: str = "[direct]") -> str:
    head = f"name: office\napps: [office-vpn]\ntools: {tools}\ncensors: {{open: []}}\n"
    return head + (f"office_vpn: {block}\n" if block else "")


def test_registered_as_a_workload_with_defaults() -> None:
    plugin = registry.app_plugin("office-vpn")
    assert plugin.kind == "workload" and plugin.needs_routed_tool
    opts = parse_scenario(_scenario()).office_vpn  # type: ignore[attr-defined]
    assert (opts.protocol, opts.requests, opts.size_kb) == ("wireguard", 3, 64)
    assert (opts.tunnel_timeout_s, opts.timeout_s) == (10.0, 5.0)


@pytest.mark.parametrize("protocol", ["wireguard", "openvpn-udp", "openvpn-tcp"])
def test_each_protocol_is_accepted(protocol: str) -> None:
    opts = parse_scenario(_scenario(f"{{protocol: {protocol}}}")).office_vpn  # type: ignore[attr-defined]
    assert opts.protocol == protocol


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("{protocol: wirguard}", r":5:\d+: office_vpn.protocol: 'wirguard' is not allowed "
         r"\(did you mean 'wireguard'\?\); input should be 'wireguard', 'openvpn-udp' or "
         r"'openvpn-tcp'"),
        ("{protocol: ipsec}", r"'wireguard', 'openvpn-udp' or 'openvpn-tcp'"),
        ("{requests: 0}", r"office_vpn.requests: 0 is out of range: must be at least 1"),
        ("{size_kb: 20000}", r"office_vpn.size_kb: .*at most 10240"),
        ("{tunnel_timeout_s: 0}", r"tunnel_timeout_s: 0 is out of range: must be more than 0"),
        ("{timeout_s: -1}", r"office_vpn.timeout_s: -1 is out of range"),
        ("{port: 51820}", r"office_vpn.port: unknown key 'port'; valid keys: protocol, requests"),
    ],
)  # fmt: skip
def test_bad_options_name_the_line_and_the_valid_choices(block: str, message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        parse_scenario(_scenario(block), "office.yaml")


def test_a_proxy_only_tool_is_refused_and_routed_tools_pass() -> None:
    with pytest.raises(ScenarioError, match=r"office-vpn.*shadowsocks\+tun.*direct, openvpn"):
        parse_scenario(_scenario(tools="[direct, shadowsocks]"), "office.yaml")
    tools = "[direct, wireguard, openvpn-udp, openvpn-tcp, shadowsocks+tun]"
    assert parse_scenario(_scenario(tools=tools)).apps == ["office-vpn"]


def test_devices_and_addresses_are_apart_from_the_vpn_tools() -> None:
    """One trial may run the office VPN through the wireguard or openvpn tool."""
    for slot in (0, 1):
        for side in ("server", "client"):
            mine = wireguard.device_name("run1", slot, side, tunnel.WG_PREFIX)
            assert mine != wireguard.device_name("run1", slot, side) and len(mine) <= 15
    assert tunnel.OVPN_DEVICE != openvpn.DEVICE and len(tunnel.OVPN_DEVICE) <= 15
    tunnels = {tunnel.SERVER_TUN, wireguard.SERVER_TUN, openvpn.SERVER_TUN}
    assert len({a.rsplit(".", 1)[0] for a in tunnels}) == 3
    assert tunnel.INTRANET_ADDR.startswith(tunnel.INTRANET_NET.split(".0/")[0])


@pytest.mark.parametrize(
    ("log", "outcome", "said"),
    [
        ("2026-12-04 18:43:29 Connection reset, restarting [-1]\n", "reset",
         "OpenVPN over tcp: Connection reset, restarting [-1]"),
        ("x TCP: connect to [AF_INET]10.0.0.1:1194 failed: Connection refused\n", "refused",
         "OpenVPN over tcp: Connection refused"),
        ("x UDPv4 link remote: [AF_INET]10.0.0.1:1194\n", "timeout",
         "OpenVPN over tcp: no tunnel in 3 s"),
    ],
)  # fmt: skip
def test_openvpn_client_logs_become_outcomes(log: str, outcome: str, said: str) -> None:
    assert openvpn_failure(log, "tcp", 3.0) == (outcome, said)


def test_a_sharded_run_plans_its_trials() -> None:
    scenario = parse_scenario(_scenario(tools="[direct, wireguard]"))
    assert trial_cost_ms(scenario, "open", "direct", "office-vpn") > 0
    assert sum(map(len, plan(scenario, 2))) == len(scenario.trial_keys())
