"""Layer-3 tunnels (OpenVPN over UDP and TCP, WireGuard through wireguard-go) across a
censor that blocks the direct path: curl and a plain UDP echo from the client host, with no
proxy setting at all, are carried by the routing into the tunnel device."""

from __future__ import annotations

import socket

import pytest

from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.tools.base import ToolFailed
from harness.tools.openvpn import OpenVpnTcp, OpenVpnUdp
from harness.tools.wireguard import WireGuard, claim_socket, device_name
from tests.e2e.test_tools_vpn_support import (
    assert_carries,
    assert_direct_blocked,
    blocked_trial,
    measure,
)

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("tool_class", [OpenVpnUdp, OpenVpnTcp, WireGuard])
def test_http_and_udp_through_vpn(tool_class, topology, supervisor, tmp_path) -> None:
    tool = tool_class()
    with blocked_trial(topology, supervisor, tmp_path, tool.name) as ctx:
        assert_direct_blocked(ctx)
        endpoint = tool.start(ctx)
        assert endpoint.socks is None and tool.exposes == "tun"
        assert_carries(tool, measure(ctx, endpoint))


def test_wireguard_names_and_stale_control_socket(tmp_path) -> None:
    names = {device_name("abc123", slot, side) for slot in (0, 1) for side in ("server", "client")}
    assert len(names) == 4 and all(len(n) <= 15 for n in names)  # IFNAMSIZ
    stale, live = tmp_path / "stale.sock", tmp_path / "live.sock"
    with socket.socket(socket.AF_UNIX) as gone:
        gone.bind(str(stale))  # bound, never listening, then closed: a killed daemon's file
    claim_socket(stale)
    assert not stale.exists()
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(live))
        server.listen()
        with pytest.raises(ToolFailed, match="in use"):
            claim_socket(live)


def test_sip_call_through_vpns_from_a_scenario(tmp_path) -> None:
    """The runner's path for tun tools: the SIP app gets no SOCKS port, and its signalling
    and RTP to a blackholed `voip` are carried by the client host's routes into the VPN."""
    scenario = parse_scenario(
        "name: e2e-vpn\ntrials: 1\ncall_seconds: 1\napps: [sip]\n"
        "tools: [direct, wireguard, openvpn-udp]\n"
        "censors:\n  voip-blocked: [{type: ip_block, hosts: [voip]}]\n"
    )
    results = {r.tool: r for r in Runner(scenario, tmp_path / "out").run()}
    assert results["direct"].outcome != "ok", "the censor must stop the direct call"
    for tool in ("wireguard", "openvpn-udp"):
        result = results[tool]
        mos = result.call.mos if result.call else None
        print(f"\n{tool}: setup {result.tool_setup_ms} ms, outcome {result.outcome}, mos {mos}")
        assert result.outcome == "ok", result.error
        assert mos is not None and mos >= 4.0, result.call
