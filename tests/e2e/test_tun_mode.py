"""Tun mode: programs with no proxy support at all (dig, curl --noproxy '*', a plain UDP
socket) on the client host are carried through a socks5 tool by sing-box's tun inbound,
across a censor that blackholes the direct path to the servers and the DNS host."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.runner import Runner
from harness.scenario import ScenarioError, parse_scenario
from harness.tools.tun_mode import TUN_DEVICE, TunMode, load_tool
from tests.e2e.test_tools_vpn_support import (
    assert_carries,
    assert_direct_blocked,
    blocked_trial,
    measure,
)

pytestmark = pytest.mark.e2e


def _dig(ctx, wait: int = 2) -> str:
    """The A record dig got (empty when it got none: dig's ";;" lines are errors)."""
    dns = ctx.topology.addr("dns")
    argv = ["dig", "+tries=1", f"+time={wait}", "+short", f"@{dns}", "voip.gatecrash.test"]
    out = ctx.topology["client"].run(argv, check=False, timeout=10).stdout
    return "\n".join(line for line in out.splitlines() if not line.startswith(";;"))


@pytest.mark.parametrize("inner", ["shadowsocks", "psiphon-like"])
def test_unmodified_programs_ride_a_socks_tool(inner, topology, supervisor, tmp_path) -> None:
    tool = load_tool(f"{inner}+tun")
    assert isinstance(tool, TunMode) and tool.exposes == "tun"
    with blocked_trial(topology, supervisor, tmp_path, tool.name) as ctx:
        assert_direct_blocked(ctx)
        assert _dig(ctx, wait=1) == "", "dig straight to the DNS host must be blocked"
        endpoint = tool.start(ctx)
        assert endpoint.socks is None
        route = ctx.topology["client"].run(["ip", "-o", "route", "get", "1.2.3.4"]).stdout
        assert f"dev {TUN_DEVICE}" in route, route
        # ...except the tool's own server: its connection must not loop into the tun
        proxy = ctx.topology.addr("proxy")
        route = ctx.topology["client"].run(["ip", "-o", "route", "get", proxy]).stdout
        assert "dev eth0" in route, route
        # dig over UDP: a plain DNS query, carried as the tool's UDP (ASSOCIATE / UDPGW)
        assert _dig(ctx) == ctx.topology.addr("voip")
        assert_carries(tool, measure(ctx, endpoint))


def test_scenario_names_tun_mode_and_rejects_a_tool_without_socks5() -> None:
    scenario = "name: t\napps: [sip]\ncensors: {open: []}\ntools: [%s]\n"
    assert parse_scenario(scenario % "direct, shadowsocks+tun").tools[1] == "shadowsocks+tun"
    with pytest.raises(ScenarioError, match=r":4:1: .*needs a tool exposing socks5"):
        parse_scenario(scenario % "wireguard+tun")
    with pytest.raises(ScenarioError, match=r"unknown tool 'nope'.*valid tools: direct"):
        parse_scenario(scenario % "nope+tun")


def test_sip_call_through_tun_mode_from_a_scenario(tmp_path) -> None:
    """The runner's path: `shadowsocks+tun` in a scenario, the SIP app given no SOCKS port,
    its signalling and RTP to a blackholed `voip` carried by the tun."""
    scenario = parse_scenario(
        "name: e2e-tun-mode\ntrials: 1\ncall_seconds: 1\napps: [sip]\n"
        "tools: [shadowsocks+tun]\ncensors:\n  voip-blocked: [{type: ip_block, hosts: [voip]}]\n"
    )
    (result,) = Runner(scenario, tmp_path / "out").run()
    assert result.outcome == "ok", result.error
    assert result.call is not None and result.call.mos is not None and result.call.mos >= 4.0
    tun_log = (Path(result.logs["dir"]) / "logs" / "client.tun-mode.err").read_text()
    # the app's SIP (UDP 5060) went into the tun and out as the tool's UDP relay
    assert re.search(r"outbound/socks\[tool\]: outbound packet connection to [\d.]+:5060", tun_log)
