"""The messenger profiles end to end: each censor technique blocks the profile it is meant
for and lets the other two through; the bytes the censor captured are recognised by the
analyzer meant for each profile; shadowsocks carries the blocked profiles.

Real topology (namespaces), real censor (NFQUEUE engine), real agents; one trial per cell,
5 messages each. The analyzers are run afterwards on the packets dumpcap recorded on the
censor's inside leg, i.e. on what the profiles really sent.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from censor_sims.analyzers import FlowInfo, classify
from censor_sims.techniques.dpi_block import recognised
from harness.results import TrialResult
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.topology.base import fqdn
from harness.topology.namespaces import list_namespaces

pytestmark = pytest.mark.e2e

PROFILES = ("signal-like", "whatsapp-like", "telegram-like")
SNI = fqdn("chat")
PORTS = {"signal-like": 443, "whatsapp-like": 5222, "telegram-like": 80}
MESSAGES = 5
OPTIONS = f"""
signal_like:   {{messages: {MESSAGES}, interval_ms: 20, timeout_s: 3, server_name: {SNI}}}
whatsapp_like: {{messages: {MESSAGES}, interval_ms: 20, timeout_s: 3, port: 5222}}
telegram_like: {{messages: {MESSAGES}, interval_ms: 20, timeout_s: 3, port: 80}}
"""
SNI_FILTER = f"{{type: sni_filter, names: [{SNI}], match: exact}}"
WA_DPI = "{type: dpi_block, protocols: [whatsapp]}"
MTPROTO_DPI = "{type: dpi_block, protocols: [mtproto]}"
# censor -> the profile it is meant to block
MEANT_FOR = {"sni-signal": "signal-like", "dpi-whatsapp": "whatsapp-like",
             "dpi-mtproto": "telegram-like"}  # fmt: skip
TECHNIQUE = {"sni-signal": "sni_filter", "dpi-whatsapp": "dpi_block", "dpi-mtproto": "dpi_block"}
RULE = {"sni-signal": f"tls sni {SNI!r}", "dpi-whatsapp": "flow recognised as whatsapp",
        "dpi-mtproto": "flow recognised as mtproto"}  # fmt: skip

MATRIX = f"""
name: e2e-messengers
trials: 1
apps: [{", ".join(PROFILES)}]
tools: [direct]
capture: true
censors:
  sni-signal: [{SNI_FILTER}]
  dpi-whatsapp: [{WA_DPI}]
  dpi-mtproto: [{MTPROTO_DPI}]
{OPTIONS}
"""
# Not dpi-mtproto here: its entropy rule also matches shadowsocks' own first bytes.
THROUGH_TOOL = f"""
name: e2e-messengers-tool
trials: 1
apps: [signal-like, whatsapp-like]
tools: [shadowsocks]
capture: true
censors:
  sni-and-whatsapp: [{SNI_FILTER}, {WA_DPI}]
{OPTIONS}
"""


def _run(text: str, out: Path) -> dict[tuple[str, str], TrialResult]:
    runner = Runner(parse_scenario(text), out)
    results = runner.run()
    assert not [ns for ns in list_namespaces() if ns.startswith(f"gc-{runner.run_id}-")]
    return {(r.censor, r.app): r for r in results}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], TrialResult]:
    return _run(MATRIX, tmp_path_factory.mktemp("messengers"))


@pytest.fixture(scope="module")
def through_tool(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], TrialResult]:
    return _run(THROUGH_TOOL, tmp_path_factory.mktemp("messengers-tool"))


def _censor_events(result: TrialResult) -> list[dict[str, Any]]:
    lines = Path(result.logs["censor"]).read_text().splitlines()
    return [json.loads(line) for line in lines]


def _blocks(result: TrialResult) -> list[dict[str, Any]]:
    """The censor's blocking decisions in this trial (a technique's verdict on a flow)."""
    return [e for e in _censor_events(result) if e["technique"] != "engine" and "flow" in e]


def _assert_delivered(result: TrialResult) -> None:
    m = result.message
    assert result.outcome == "ok" and result.error is None, result
    assert m is not None and m.connected and m.connect_ms and m.connect_ms > 0
    assert m.sent == m.delivered == MESSAGES, m
    assert 0 < m.latency_ms_p50 <= m.latency_ms_p95, m  # type: ignore[operator]


@pytest.mark.parametrize("censor", list(MEANT_FOR))
def test_each_censor_blocks_its_profile_and_passes_the_others(matrix, censor: str) -> None:
    for app in PROFILES:
        result = matrix[(censor, app)]
        if app == MEANT_FOR[censor]:
            m = result.message
            assert result.outcome == "reset", result
            assert m is not None and not m.connected and m.delivered == 0, m
            blocks = _blocks(result)
            assert blocks and blocks[0]["technique"] == TECHNIQUE[censor], blocks
            assert blocks[0]["flow"].endswith(f":{PORTS[app]}"), blocks[0]
            assert blocks[0]["rule"].startswith(RULE[censor]), blocks[0]
        else:
            _assert_delivered(result)
            assert not _blocks(result), _blocks(result)
        print(f"{censor} / {app}: {result.outcome} {result.message}")


def _client_flow(result: TrialResult, port: int) -> tuple[FlowInfo, list[tuple[bool, bytes]]]:
    """The first TCP flow to `port` on the censor's inside leg, as (rev, payload) in order."""
    fields = ["ip.src", "tcp.srcport", "ip.dst", "tcp.dstport", "tcp.payload"]
    out = subprocess.run(
        ["tshark", "-r", result.logs["pcap"], "-Y", f"frame.interface_id == 0 && tcp.len > 0 "
         f"&& tcp.port == {port}", "-T", "fields", *(a for f in fields for a in ("-e", f))],
        capture_output=True, text=True, check=True, timeout=30,
    )  # fmt: skip
    rows = [line.split("\t") for line in out.stdout.splitlines()]
    assert rows, f"no payload to port {port} in {result.logs['pcap']}"
    src, sport, dst, dport, _ = rows[0]
    info = FlowInfo("tcp", src, int(sport), dst, int(dport))
    flow = [r for r in rows if {(r[0], r[1]), (r[2], r[3])} == {(src, sport), (dst, dport)}]
    return info, [(r[0] != src, bytes.fromhex(r[4])) for r in flow]


ANALYZERS = ["tls", "whatsapp", "mtproto", "fet"]


@pytest.mark.parametrize("app", PROFILES)
def test_real_bytes_are_recognised_by_the_analyzer_meant_for_them(matrix, app: str) -> None:
    """In all three trials of the profile (blocked or not), its real first bytes."""
    for censor in MEANT_FOR:
        info, packets = _client_flow(matrix[(censor, app)], PORTS[app])
        assert info.dst_port == PORTS[app]
        props = classify(ANALYZERS, info, packets)
        tls, wa, mt = props.get("tls", {}), props.get("whatsapp", {}), props.get("mtproto", {})
        if app == "signal-like":
            assert tls.get("handshake") == "client_hello" and tls.get("sni") == SNI, tls
        else:
            assert not tls.get("looks_like") and "sni" not in tls, tls
        if app == "whatsapp-like":
            assert recognised("whatsapp", wa), wa
            assert wa["version"] == "6.3" and wa["client_hello"], wa
        else:
            assert not recognised("whatsapp", wa), wa
        if app == "telegram-like":
            assert recognised("mtproto", mt) and mt.get("obfuscated2"), mt
            assert mt["framing"] == "intermediate" and mt["dc_id"] == 2, mt
        else:
            assert not recognised("mtproto", mt), mt
        print(f"{app} under {censor}: first payload {len(packets[0][1])} B, fet {props['fet']}")


def test_shadowsocks_carries_the_blocked_profiles(through_tool) -> None:
    for app in ("signal-like", "whatsapp-like"):
        result = through_tool[("sni-and-whatsapp", app)]
        _assert_delivered(result)
        assert not _blocks(result)
        # The censor saw the tunnel, never the profile's own flow to the chat server.
        listed = subprocess.run(
            ["tshark", "-r", result.logs["pcap"], "-Y", f"tcp.port == {PORTS[app]}"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        assert listed.stdout.strip() == "", listed.stdout
        print(f"{app} through shadowsocks: {result.message}")
