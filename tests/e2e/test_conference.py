"""The `conference` bystander end to end: three aiortc participants on the client host meet
in a mesh relayed by a real coturn outside, signalling over a real WebSocket/TLS server,
through the real censor on the router.

It works on the open network (TURN over UDP: every stream relay/udp, no loss); a DPI block
of STUN and DTLS breaks it (the TURN Allocate requests are the censor's first hits, in its
events); a DPI block of SIP alone spares it; and under the same STUN/DTLS block TURN over
TLS on 443 still carries the meeting, as the TLS fallback of business clients is meant to.
One trial per cell, 2 s of media, thresholds scaled so one trial can decide.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.report.evidence import gather
from harness.results import TrialResult
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.scoring.verdict import CellScore, score_cells
from harness.topology.namespaces import list_namespaces

pytestmark = pytest.mark.e2e

COMMON = """
trials: 1
call_seconds: 2
apps: [conference]
tools: [direct]
thresholds: {works_min_cssr_lower: 0.2, blocked_max_cssr_upper: 0.2}
censors:
  open: []
  webrtc-dpi: [{type: dpi_block, protocols: [stun, dtls]}]
  sip-dpi: [{type: dpi_block, protocols: [sip]}]
"""
UDP = "name: e2e-conference\nconference: {join_timeout_s: 8}\n" + COMMON
TLS = "name: e2e-conference-tls\nconference: {join_timeout_s: 8, turn_transport: tls}\n" + COMMON
STREAMS = 6  # 3 participants, each receiving the other two


def _run(text: str, out: Path, censors: list[str]) -> dict[str, tuple[TrialResult, CellScore]]:
    scenario = parse_scenario(text)
    only = [(censor, "direct", "conference", 0) for censor in censors]
    runner = Runner(scenario, out, only=only)
    results = runner.run()
    assert not [ns for ns in list_namespaces() if ns.startswith(f"gc-{runner.run_id}-")]
    cells = {c.censor: c for c in score_cells(results, scenario.thresholds)}
    return {r.censor: (r, cells[r.censor]) for r in results}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[TrialResult, CellScore]]:
    udp = _run(UDP, tmp_path_factory.mktemp("conference"), ["open", "webrtc-dpi", "sip-dpi"])
    tls = _run(TLS, tmp_path_factory.mktemp("conference-tls"), ["webrtc-dpi"])
    return {**udp, "tls/webrtc-dpi": tls["webrtc-dpi"]}


def _show(result: TrialResult) -> str:
    return f"{result.censor}: {result.outcome} {result.error} {result.workload}"


def _blocks(result: TrialResult) -> list[dict[str, Any]]:
    """The censor's decisions on flows during the trial, as the report's evidence has them."""
    events = gather(result, with_pcap=False).events
    return [e for e in events if e.get("technique") != "engine" and "flow" in e]


def _assert_met(result: TrialResult, cell: CellScore, relay: str) -> None:
    w, c = result.workload, result.conference
    assert result.outcome == "ok" and result.error is None, _show(result)
    assert w is not None and w.items == w.completed == STREAMS and not w.failures, _show(result)
    assert c is not None and c.all_joined and c.media_share_worst == 1.0, c
    assert all(m.joined and m.connected == 2 and m.relay == [relay] for m in c.members), c
    assert c.loss_pct_worst is not None and c.loss_pct_worst <= 5.0, c
    assert all(s.sent >= 50 for s in c.streams), c.streams  # 2 s at 20 ms: ~100 each
    assert c.join_ms_max is not None and 0 < c.join_ms_max == w.duration_ms < 5000, c
    assert w.bytes > 0
    assert cell.verdict == "works", cell.reason
    print(_show(result), f"worst loss {c.loss_pct_worst}%, join {c.join_ms_max} ms")


@pytest.mark.parametrize("censor", ["open", "sip-dpi"])
def test_the_meeting_works_open_and_under_a_sip_censor(runs, censor: str) -> None:
    result, cell = runs[censor]
    _assert_met(result, cell, "relay/udp")
    if censor == "sip-dpi":
        assert not _blocks(result), _blocks(result)


def test_a_stun_and_dtls_dpi_block_breaks_the_meeting(runs) -> None:
    result, cell = runs["webrtc-dpi"]
    w, c = result.workload, result.conference
    assert result.outcome == "no-media" and "0/2 peers connected" in (result.error or ""), result
    assert "TURN allocation" in (result.error or ""), result.error  # what the join waited on
    assert w is not None and w.completed == 0 and len(w.failures) == STREAMS, _show(result)
    assert c is not None and not c.all_joined and c.media_share_worst == 0.0, c
    assert all(m.signalling_ms is not None and m.connected == 0 for m in c.members), c
    assert cell.verdict == "blocked", cell.reason
    blocks = _blocks(result)
    assert blocks and blocks[0]["technique"] == "dpi_block", blocks
    assert blocks[0]["rule"] == "flow recognised as stun", blocks[0]
    assert blocks[0]["flow"].endswith(":3478"), blocks[0]  # a TURN Allocate to coturn


def test_turn_over_tls_443_carries_the_meeting_past_the_stun_block(runs) -> None:
    result, cell = runs["tls/webrtc-dpi"]
    _assert_met(result, cell, "relay/tls")
    assert not _blocks(result), _blocks(result)
