"""The bystander workloads end to end: a web page on three hostnames, a software update and
the run zone's names, each through the real topology and censor. Each works on the open
network, is broken by a technique aimed at it (an SNI filter on www, a throttle on the
update server's SNI, a TCP 443 reject, on-path DNS poisoning), and is spared by a censor
aimed at VoIP alone (dpi_block of SIP and RTP). Through shadowsocks (curl's
--socks5-hostname) the page loads past the SNI filter.

One trial per cell, thresholds scaled so that one trial can decide (as quickstart does);
only the cells asserted on are run.
"""

from __future__ import annotations

import json

import pytest

from harness.results import TrialResult
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.scoring.verdict import CellScore, score_cells
from harness.topology.base import fqdn
from harness.topology.dns import ALIASES
from harness.topology.namespaces import list_namespaces

pytestmark = pytest.mark.e2e

APPS = ("web", "download", "dns")
RESOURCES = 8  # the page links 8 resources: 9 items with the page itself
UPDATE_MB = 0.5
THROTTLE_MBIT = 1
SCENARIO = f"""
name: e2e-bystanders
trials: 1
apps: [web, download, dns]
tools: [direct, shadowsocks]
thresholds: {{works_min_cssr_lower: 0.2, blocked_max_cssr_upper: 0.2}}
censors:
  open: []
  sni-www: [{{type: sni_filter, names: [{fqdn("www")}], match: exact}}]
  throttle-updates: [{{type: bandwidth_throttle, names: [{fqdn("updates")}],
                      rate: {THROTTLE_MBIT}mbit}}]
  reject-443: [{{type: port_block, proto: tcp, ports: [443], action: reject}}]
  poison: [{{type: dns_poison, names: [gatecrash.test], match: suffix}}]
  voip-dpi: [{{type: dpi_block, protocols: [sip, rtp]}}]
web: {{resources: {RESOURCES}, resource_kb: 64, timeout_s: 3}}
download: {{size_mb: {UPDATE_MB}, timeout_s: 12}}
dns: {{timeout_s: 1}}
"""
# (censor, app) cells run: every bystander open and under the VoIP censor, and each one
# under the technique that should break it.
BREAKS = {"sni-www": "web", "throttle-updates": "download", "reject-443": "download",
          "poison": "dns"}  # fmt: skip
CELLS = [(c, "direct", a) for c in ("open", "voip-dpi") for a in APPS]
CELLS += [(c, "direct", a) for c, a in BREAKS.items()] + [("sni-www", "shadowsocks", "web")]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict[tuple[str, str], CellScore]]:
    scenario = parse_scenario(SCENARIO)
    only = [(*cell, 0) for cell in CELLS]
    runner = Runner(scenario, tmp_path_factory.mktemp("bystanders"), jobs=4, only=only)
    results = runner.run()
    assert not [ns for ns in list_namespaces() if ns.startswith(f"gc-{runner.run_id}-")]
    cells = score_cells(results, scenario.thresholds)
    by_cell = {(r.censor, r.app): r for r in results if r.tool == "direct" and not r.is_fault}
    by_cell |= {(r.censor, r.tool): r for r in results if r.tool != "direct"}
    return by_cell, {(c.censor, c.app): c for c in cells if c.tool == "direct"}


def _show(result: TrialResult) -> str:
    return f"{result.censor}/{result.app}: {result.outcome} {result.error} {result.workload}"


@pytest.mark.parametrize("censor", ["open", "voip-dpi"])
def test_every_bystander_works_open_and_under_a_voip_censor(run, censor: str) -> None:
    results, cells = run
    for app in APPS:
        result = results[(censor, app)]
        w = result.workload
        assert result.outcome == "ok" and result.error is None, _show(result)
        assert w is not None and w.completed == w.items > 0 and not w.failures, _show(result)
        assert w.duration_ms and w.duration_ms > 0, _show(result)
        assert cells[(censor, app)].verdict == "works", cells[(censor, app)].reason
        print(_show(result))
    web, download, dns = (results[(censor, app)].workload for app in APPS)
    assert web.items == RESOURCES + 1 and web.bytes >= RESOURCES * 64 * 1024  # type: ignore[union-attr]
    assert download.bytes == int(UPDATE_MB * 2**20) and download.throughput_mbps > 10  # type: ignore[union-attr,operator]
    assert dns.items == 9  # type: ignore[union-attr]  # five hosts and four aliases


def test_an_sni_filter_on_www_blocks_the_page(run) -> None:
    results, cells = run
    result = results[("sni-www", "web")]
    assert result.outcome == "reset", _show(result)
    assert result.workload.completed == 0 and fqdn("www") in result.error  # type: ignore[union-attr,operator]
    assert cells[("sni-www", "web")].verdict == "blocked", cells[("sni-www", "web")].reason


def test_a_throttle_on_the_update_server_degrades_the_download(run) -> None:
    results, cells = run
    result = results[("throttle-updates", "download")]
    w = result.workload
    assert result.outcome == "ok" and w is not None and w.completed == 1, _show(result)
    assert 0.5 * THROTTLE_MBIT < w.throughput_mbps < 1.2 * THROTTLE_MBIT, _show(result)  # type: ignore[operator]
    cell = cells[("throttle-updates", "download")]
    assert cell.verdict == "degraded" and "median throughput" in cell.reason, cell.reason
    print(_show(result))


def test_rejecting_tcp_443_blocks_the_download(run) -> None:
    results, cells = run
    result = results[("reject-443", "download")]
    assert result.outcome == "refused", _show(result)
    assert result.workload.completed == 0 and result.workload.bytes == 0  # type: ignore[union-attr]
    assert cells[("reject-443", "download")].verdict == "blocked"


def test_dns_poisoning_gives_wrong_answers(run) -> None:
    results, cells = run
    result = results[("poison", "dns")]
    w = result.workload
    assert result.outcome == "dns-failure" and w is not None, _show(result)
    # The censor forges an answer to every query (a resolver may reuse a source port: the
    # injector answers per query, not per flow) ...
    with open(result.logs["censor"]) as log:
        events = [json.loads(line) for line in log]
    forged = {e["analyzer"]["dns"]["qname"] for e in events if e["action"] == "forge"}
    names = [fqdn(role) for role in ("voip", "chat", "proxy", "dns", "front")]
    assert forged == {*names, *(fqdn(alias) for alias in ALIASES)}, forged
    # ... and the resolver takes the first answer. On-path injection races the true answer,
    # as the GFW's does: the forged one leaves first, but on a loaded host the kernel may
    # deliver it later (seen once in CI: one name of nine resolved truly).
    assert w.items == 9 and len(w.failures) >= w.items - 1, _show(result)
    assert w.completed == w.items - len(w.failures), _show(result)
    assert all("192.0.2.1" in failure for failure in w.failures), w.failures
    assert cells[("poison", "dns")].verdict == "blocked", cells[("poison", "dns")].reason
    print(_show(result))


def test_shadowsocks_carries_the_page_past_the_sni_filter(run) -> None:
    results, _ = run
    result = results[("sni-www", "shadowsocks")]
    w = result.workload
    assert result.outcome == "ok" and w is not None and w.completed == w.items == 9, _show(result)
    print(_show(result))
