"""The office-vpn bystander end to end: a WireGuard (wireguard-go) and an OpenVPN-over-TCP
office VPN from the client to a gateway on `voip`, then intranet requests to a server only
the tunnel reaches, through the real topology and censor. Each works on the open network;
a DPI rule aimed at VPNs (dpi_block of wireguard, of openvpn) blocks it, and the censor's
event log names the rule and what the analyzer saw; a censor aimed at VoIP (dpi_block of
SIP) spares it. Through the openvpn-udp tool the WireGuard office VPN passes the WireGuard
rule: the two tunnels share a trial without a clash.

One trial per cell, thresholds scaled so that one trial can decide; only the cells asserted
on are run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.apps.office_vpn.tunnel import CLIENT_TUN
from harness.report.evidence import gather
from harness.results import TrialResult
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.scoring.verdict import CellScore, score_cells
from harness.topology.namespaces import list_namespaces

pytestmark = pytest.mark.e2e

REQUESTS, SIZE_KB, TUNNEL_TIMEOUT_S = 3, 64, 3


def _scenario(protocol: str, block: str) -> str:
    return f"""
name: e2e-office-vpn-{protocol}
trials: 1
apps: [office-vpn]
tools: [direct, openvpn-udp]
thresholds: {{works_min_cssr_lower: 0.2, blocked_max_cssr_upper: 0.2}}
censors:
  open: []
  vpn-dpi: [{{type: dpi_block, protocols: [{block}], action: {"drop" if block == "wireguard" else "rst"}}}]
  sip-dpi: [{{type: dpi_block, protocols: [sip], action: drop}}]
office_vpn: {{protocol: {protocol}, requests: {REQUESTS}, size_kb: {SIZE_KB},
             tunnel_timeout_s: {TUNNEL_TIMEOUT_S}, timeout_s: 3}}
"""  # noqa: E501


Run = tuple[dict[tuple[str, str], TrialResult], dict[tuple[str, str], CellScore]]


def _run(tmp: Path, protocol: str, block: str, cells: list[tuple[str, str]]) -> Run:
    scenario = parse_scenario(_scenario(protocol, block))
    only = [(censor, tool, "office-vpn", 0) for censor, tool in cells]
    runner = Runner(scenario, tmp, jobs=len(cells), only=only)
    results = runner.run()
    assert not [ns for ns in list_namespaces() if ns.startswith(f"gc-{runner.run_id}-")]
    assert not list(Path("/var/run/wireguard").glob("ov*.sock")), "a wireguard-go socket stayed"
    cell_scores = score_cells(results, scenario.thresholds)
    return (
        {(r.censor, r.tool): r for r in results if not r.is_fault},
        {(c.censor, c.tool): c for c in cell_scores},
    )


@pytest.fixture(scope="module")
def wireguard(tmp_path_factory: pytest.TempPathFactory) -> Run:
    cells = [("open", "direct"), ("vpn-dpi", "direct"), ("sip-dpi", "direct"),
             ("vpn-dpi", "openvpn-udp")]  # fmt: skip
    return _run(tmp_path_factory.mktemp("office-wg"), "wireguard", "wireguard", cells)


@pytest.fixture(scope="module")
def openvpn_tcp(tmp_path_factory: pytest.TempPathFactory) -> Run:
    cells = [("open", "direct"), ("vpn-dpi", "direct")]
    return _run(tmp_path_factory.mktemp("office-ovpn"), "openvpn-tcp", "openvpn", cells)


def _show(result: TrialResult) -> str:
    return f"{result.censor}/{result.tool}: {result.outcome} {result.error} {result.workload}"


def _assert_answered_through_the_tunnel(result: TrialResult) -> None:
    w = result.workload
    assert result.outcome == "ok" and result.error is None, _show(result)
    assert w is not None and w.completed == w.items == REQUESTS and not w.failures, _show(result)
    assert w.bytes == REQUESTS * SIZE_KB * 1024, _show(result)
    assert w.tunnel_ms is not None and 0 < w.tunnel_ms < TUNNEL_TIMEOUT_S * 1000, _show(result)
    assert w.duration_ms is not None and w.duration_ms > w.tunnel_ms, _show(result)
    # The intranet server saw every request come from the client's tunnel address.
    log = Path(result.logs["dir"], "logs", "voip.https-voip.err").read_text()
    gets = [line for line in log.splitlines() if '"GET /' in line]
    assert len(gets) == REQUESTS and all(g.startswith(f"{CLIENT_TUN} ") for g in gets), log
    print(_show(result))


def _dpi_events(result: TrialResult) -> list[dict]:
    return [e for e in gather(result, with_pcap=False).events if e.get("technique") == "dpi_block"]


@pytest.mark.parametrize("censor", ["open", "sip-dpi"])
def test_wireguard_office_vpn_works_open_and_under_a_voip_censor(wireguard, censor: str) -> None:
    results, cells = wireguard
    _assert_answered_through_the_tunnel(results[(censor, "direct")])
    assert cells[(censor, "direct")].verdict == "works", cells[(censor, "direct")].reason
    assert not _dpi_events(results[(censor, "direct")])  # the SIP rule never acted on it


def test_a_wireguard_dpi_rule_blocks_the_office_vpn(wireguard) -> None:
    results, cells = wireguard
    result = results[("vpn-dpi", "direct")]
    w = result.workload
    assert result.outcome == "timeout" and "no WireGuard handshake" in result.error, _show(result)  # type: ignore[operator]
    assert w is not None and w.completed == 0 and w.items == REQUESTS and w.tunnel_ms is None
    assert cells[("vpn-dpi", "direct")].verdict == "blocked", cells[("vpn-dpi", "direct")].reason
    drops = [e for e in _dpi_events(result) if e.get("action") == "drop"]
    assert drops and drops[0]["rule"] == "flow recognised as wireguard", drops
    assert drops[0]["analyzer"]["wireguard"]["message_type"] == "initiation", drops[0]
    assert drops[0]["flow"].startswith("udp ") and drops[0]["flow"].endswith(":51820"), drops[0]


def test_through_the_openvpn_tool_the_office_vpn_passes_the_wireguard_rule(wireguard) -> None:
    results, cells = wireguard
    _assert_answered_through_the_tunnel(results[("vpn-dpi", "openvpn-udp")])
    assert cells[("vpn-dpi", "openvpn-udp")].verdict == "works"


def test_openvpn_tcp_office_vpn_works_open_and_a_dpi_rule_resets_it(openvpn_tcp) -> None:
    results, cells = openvpn_tcp
    _assert_answered_through_the_tunnel(results[("open", "direct")])
    result = results[("vpn-dpi", "direct")]
    assert result.outcome == "reset" and "Connection reset" in result.error, _show(result)  # type: ignore[operator]
    assert result.workload is not None and result.workload.completed == 0, _show(result)
    assert cells[("vpn-dpi", "direct")].verdict == "blocked", cells[("vpn-dpi", "direct")].reason
    resets = [e for e in _dpi_events(result) if e.get("action") == "rst"]
    assert resets and resets[0]["rule"] == "flow recognised as openvpn", resets
    assert resets[0]["flow"].startswith("tcp ") and resets[0]["flow"].endswith(":1194"), resets
    print(_show(result))
