"""Every tool carries a real SIP call and a real XMPP chat across a censor that blackholes
the servers (ip_block of `voip` and `chat`): the direct control fails, each tool's call is
set up with media both ways and a rating, and each tool's chat delivers every message.
A tool that declares no UDP (obfs4: its SOCKS5 answers UDP ASSOCIATE "not supported") can
carry no SIP-over-UDP call: for it the matrix checks the declaration instead.

One run of the real runner, trials side by side, one short trial per cell.
"""

from __future__ import annotations

import pytest

from harness import registry
from harness.results import final_attempts
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.tools.listing import tool_rows

pytestmark = pytest.mark.e2e

TOOLS = sorted(name for name in registry.TOOLS if name != "direct")
NO_UDP = {row.name for row in tool_rows() if row.udp == "none"}
# A call through any tool, on an otherwise idle path: G.711 with PLC is rated R ~93 at
# zero loss; TCP-only tools carry RTP over a UDP-over-TCP gateway, which may add jitter
# and delay but loses nothing here. R 70 (MOS 3.6) is "satisfied" in ITU-T G.107.
MIN_R = 70.0


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> dict:
    scenario = parse_scenario(
        "name: tools-matrix\ntrials: 1\ncall_seconds: 1\napps: [sip, xmpp]\n"
        f"tools: [direct, {', '.join(TOOLS)}]\n"
        "censors:\n  servers-blocked: [{type: ip_block, hosts: [voip, chat]}]\n"
        "xmpp: {messages: 5, interval_ms: 20, timeout_s: 5}\n"
    )
    out = tmp_path_factory.mktemp("matrix")
    results = final_attempts(Runner(scenario, out, jobs=4).run())
    return {(r.tool, r.app): r for r in results}


def test_the_direct_control_is_blocked(matrix) -> None:
    call, chat = matrix[("direct", "sip")], matrix[("direct", "xmpp")]
    assert call.call is not None and not call.call.setup_ok, call.outcome
    assert chat.message is None or chat.message.delivered == 0, chat.outcome


@pytest.mark.parametrize("tool", sorted(set(TOOLS) - NO_UDP))
def test_the_tool_carries_a_call(matrix, tool) -> None:
    trial = matrix[(tool, "sip")]
    assert trial.outcome == "ok", f"{trial.outcome}: {trial.error}"
    call = trial.call
    assert call is not None and call.setup_ok
    assert call.up is not None and call.down is not None
    assert call.up.received > 0 and call.down.received > 0
    assert call.r_factor is not None and call.r_factor >= MIN_R, call


@pytest.mark.parametrize("tool", TOOLS)
def test_the_tool_carries_a_chat(matrix, tool) -> None:
    trial = matrix[(tool, "xmpp")]
    assert trial.outcome == "ok", f"{trial.outcome}: {trial.error}"
    message = trial.message
    assert message is not None and message.connected
    assert message.delivered == message.sent == 5


@pytest.mark.parametrize("tool", sorted(NO_UDP))
def test_a_tool_without_udp_carries_no_udp_call(matrix, tool) -> None:
    trial = matrix[(tool, "sip")]
    assert trial.call is not None and not trial.call.setup_ok
    assert trial.outcome == "timeout" and "REGISTER" in (trial.error or "")


def test_the_tools_without_udp_are_the_expected_ones() -> None:
    assert {"obfs4"} == NO_UDP
