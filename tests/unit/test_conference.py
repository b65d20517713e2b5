"""The `conference` app's pieces that need no network: its options in a scenario file,
the participants' result lines merged into streams, participants and a workload, the
trial's outcome, its agent's arguments and its place in the shard cost model."""

from __future__ import annotations

from typing import Any

import pytest

from harness.apps.conference.agent import parse_args
from harness.apps.conference.metrics import merge, outcome
from harness.apps.conference.options import ConferenceOptions
from harness.registry import app_class, app_plugin
from harness.scale.shard import trial_cost_ms
from harness.scenario import ScenarioError, parse_scenario

HEAD = """name: s
apps: [conference]
tools: [direct]
censors: {open: []}
"""


def test_the_options_default_to_a_three_party_meeting_over_turn_udp() -> None:
    opts = parse_scenario(HEAD).conference
    assert (opts.participants, opts.turn_transport, opts.codec) == (3, "udp", "opus")
    assert opts.join_timeout_s == 10.0 and opts.max_loss_pct == 20.0
    tls = parse_scenario(HEAD + "conference: {participants: 5, turn_transport: tls}\n")
    assert (tls.conference.participants, tls.conference.turn_transport) == (5, "tls")


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ("{participants: 2}", "participants: 2 is out of range: must be at least 3 and at most 8"),
        ("{turn_transport: dtls}", "turn_transport: 'dtls' is not allowed (did you mean 'tls'?)"),
        ("{max_loss_pct: 101}", "max_loss_pct: 101 is out of range: must be at least 0"),
        ("{join_timeout_s: 0}", "join_timeout_s: 0 is out of range: must be more than 0"),
        ("{rooms: 2}", "rooms: unknown key 'rooms'; valid keys: codec, join_timeout_s,"),
    ],
)
def test_bad_options_are_refused_where_they_are(options: str, expected: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(HEAD + f"conference: {options}\n", "s.yaml")
    assert info.value.problems[0].startswith(f"s.yaml:5:14: conference.{expected}"), info.value


def test_the_app_is_a_registered_workload() -> None:
    plugin = app_plugin("conference")
    assert plugin.kind == "workload" and plugin.options is ConferenceOptions
    assert app_class("conference").binaries == {"turnserver": "coturn"}


def _line(index: int, sent: dict[int, int], received: dict[int, int], **extra: Any) -> dict:
    """Participant `index`'s result line: per other participant, packets sent and received."""
    links = {
        str(o): {"sent": sent[o], "received": received[o], "bytes": 160 * received[o],
                 "jitter_ms": 1.0, "connected_ms": 100.0 + o, "pair": "relay/udp"}
        for o in sent
    }  # fmt: skip
    return {"index": index, "outcome": "ok", "error": None, "joined": True,
            "join_ms": 200.0 + index, "signalling_ms": 10.0, "links": links, **extra}  # fmt: skip


def _meeting(n: int = 3, received: int = 100) -> list[dict]:
    others = lambda i: [o for o in range(n) if o != i]  # noqa: E731
    return [_line(i, dict.fromkeys(others(i), 100), dict.fromkeys(others(i), received))
            for i in range(n)]  # fmt: skip


def test_a_full_meeting_is_every_stream_received() -> None:
    conference, workload = merge(_meeting(), "udp", 20.0)
    assert (workload.items, workload.completed, workload.failures) == (6, 6, [])
    assert workload.bytes == 6 * 160 * 100 and workload.duration_ms == 202.0
    assert conference.all_joined and conference.join_ms_max == 202.0
    assert conference.loss_pct_worst == 0.0 and conference.media_share_worst == 1.0
    assert [m.media_from for m in conference.members] == [[1, 2], [0, 2], [0, 1]]
    assert {(s.sender, s.receiver) for s in conference.streams} == {
        (s, r) for s in range(3) for r in range(3) if s != r
    }
    assert all(m.relay == ["relay/udp"] and m.connected == 2 for m in conference.members)
    assert outcome(_meeting(), workload) == ("ok", None)


def test_loss_is_against_what_the_sender_sent_and_over_the_limit_is_not_received() -> None:
    lines = _meeting()
    lines[1]["links"]["0"]["received"] = 70  # p1 got 70 of p0's 100
    lines[2]["links"]["0"]["received"] = 85
    conference, workload = merge(lines, "udp", 20.0)
    by_pair = {(s.sender, s.receiver): s for s in conference.streams}
    assert by_pair[(0, 1)].loss_pct == 30.0 and not by_pair[(0, 1)].ok
    assert by_pair[(0, 2)].loss_pct == 15.0 and by_pair[(0, 2)].ok
    assert conference.loss_pct_worst == 30.0 and conference.media_share_worst == 0.5
    assert workload.completed == 5 and workload.failures == ["p1 from p0: 30% lost > 20%"]
    assert outcome(lines, workload)[0] == "no-media"


def test_a_blocked_meeting_names_what_each_participant_missed() -> None:
    lines = _meeting(received=0)
    for line in lines:
        line.update(outcome="no-media", joined=False, join_ms=None,
                    error="0/2 peers connected within --join-timeout 5 s")  # fmt: skip
        for link in line["links"].values():
            link.update(sent=0, connected_ms=None, pair=None)
    conference, workload = merge(lines, "udp", 20.0)
    assert workload.completed == 0 and len(workload.failures) == 6
    assert workload.failures[0] == "p0 from p1: no media (0 packets sent)"
    assert workload.duration_ms is None and not conference.all_joined
    assert conference.media_share_worst == 0.0 and conference.loss_pct_worst is None
    assert all(m.connected == 0 and m.relay == [] for m in conference.members)
    status, error = outcome(lines, workload)
    assert status == "no-media" and error and error.startswith("p0: 0/2 peers connected")


def test_a_signalling_failure_outranks_no_media_and_a_lost_agent_is_a_fault() -> None:
    lines = [{"outcome": "reset", "error": "signalling: connection reset"}] * 3
    _, workload = merge(lines, "tls", 20.0)
    assert workload.items == 6 and workload.completed == 0
    assert outcome(lines, workload)[0] == "reset"
    faulty = [*_meeting()[:2], {"outcome": "harness-fault", "error": "participant2 gave no result"}]
    _, workload = merge(faulty, "udp", 20.0)
    assert workload.completed == 2  # p0 <-> p1 only
    assert outcome(faulty, workload)[0] == "harness-fault"


def test_the_agent_refuses_an_index_outside_the_meeting() -> None:
    base = ["--participants", "3", "--signal-host", "chat.x", "--sni", "chat.x", "--ca", "c",
            "--resolver", "10.0.0.1", "--turn-ip", "10.0.0.2", "--turn-user", "u",
            "--turn-password", "p", "--duration", "2"]  # fmt: skip
    assert parse_args([*base, "--index", "2"]).transport == "udp"
    with pytest.raises(SystemExit):
        parse_args([*base, "--index", "3"])


def test_the_shard_planner_counts_a_meeting_with_its_media() -> None:
    assert trial_cost_ms(parse_scenario(HEAD), "open", "direct", "conference") >= 5000
