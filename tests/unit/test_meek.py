"""Meek's session logic: polling back-off, retries, cookies, request sequencing, HTTP framing,
and a whole session on loopback (real front, real meek server, real OSSH + SSH) carrying a
stream in order, also across a dropped connection."""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import os
import random
from pathlib import Path

import pytest

from harness.pki import make_ca
from harness.tools.psiphon_like import http11, obfuscator
from harness.tools.psiphon_like.client import connect_over
from harness.tools.psiphon_like.front import Front
from harness.tools.psiphon_like.meek_client import MeekClient
from harness.tools.psiphon_like.meek_protocol import (
    SEQ_HEADER,
    MeekError,
    PollSchedule,
    PollTiming,
    Relay,
    Resend,
    SessionState,
    new_cookie,
    parse_seq,
    retry_delays,
    session_id_from,
)
from harness.tools.psiphon_like.meek_server import MeekServer
from harness.tools.psiphon_like.server import OsshServer

EXACT = PollTiming(min_interval=0.001, min_jitter=0, multiplier=1.5, multiplier_probability=1,
                   jitter=0, max_interval=0.25, max_jitter=0)  # fmt: skip


def test_poll_interval_backs_off_geometrically_up_to_the_maximum() -> None:
    schedule = PollSchedule(EXACT, random.Random(1))
    got = [schedule.after(exchanged=False) for _ in range(20)]
    assert got[0] == pytest.approx(0.0015)
    assert got[1] == pytest.approx(0.00225)
    assert all(b >= a for a, b in itertools.pairwise(got))
    assert got[-1] == pytest.approx(0.25) and max(got) <= 0.25 + 1e-12
    assert len([g for g in got if g < 0.25]) == 13  # 1 ms * 1.5**13 < 250 ms < 1 ms * 1.5**14


def test_poll_interval_resets_to_zero_on_data_then_restarts_at_the_minimum() -> None:
    schedule = PollSchedule(EXACT, random.Random(1))
    for _ in range(10):
        schedule.after(exchanged=False)
    assert schedule.after(exchanged=True) == 0.0
    assert schedule.after(exchanged=False) == pytest.approx(0.001)


def test_poll_interval_jitter_stays_within_its_bounds() -> None:
    timing = PollTiming()
    rng = random.Random(7)
    for _ in range(200):
        schedule = PollSchedule(timing, rng)
        assert 0.0007 <= schedule.interval <= 0.0013  # min 1 ms, jitter 0.3
        values = [schedule.after(exchanged=False) for _ in range(60)]
        assert max(values) <= timing.max_interval * (1 + timing.max_jitter) * (1 + timing.jitter)
        # it reaches the maximum's neighbourhood (below it while no multiplier is drawn)
        assert max(values[-30:]) >= timing.max_interval * (1 - timing.max_jitter)


def test_retry_delays_double_to_one_second_within_five() -> None:
    delays = retry_delays()
    assert delays[:6] == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0]
    assert sum(delays) <= 5.0 and sum(delays) + 1.0 > 5.0
    assert retry_delays(deadline=0.0) == [0.05]  # at least one retry


def test_cookie_has_a_one_letter_name_and_carries_the_session_id() -> None:
    for _ in range(50):
        name, value = new_cookie()
        assert len(name) == 1 and name.isupper()
        assert session_id_from(f"{name}={value}") == value
        assert session_id_from(f"{name}={value}; other=1") == value
    assert new_cookie()[1] != new_cookie()[1]


@pytest.mark.parametrize("header", [None, "", "A", "A=short", "A=bad value with spaces!"])
def test_missing_or_malformed_cookie_is_a_plain_404(header) -> None:
    with pytest.raises(MeekError) as exc:
        session_id_from(header)
    assert exc.value.status == 404


def test_requests_relay_in_order_and_a_repeat_gets_the_cached_response() -> None:
    state = SessionState()
    assert state.request(0) == Relay(0)
    state.responded(0, b"down-0")
    assert state.request(1) == Relay(1)
    state.responded(1, b"down-1")
    assert state.request(1) == Resend(b"down-1")  # the client lost the response: resend it
    assert state.request(1) == Resend(b"down-1")
    assert state.request(2) == Relay(2)


@pytest.mark.parametrize("seq", [0, 1, 5])
def test_out_of_order_request_is_refused(seq) -> None:
    state = SessionState()
    state.request(0)
    state.responded(0, b"")
    state.request(1)  # its response is not cached yet: a repeat cannot be answered
    with pytest.raises(MeekError) as exc:
        state.request(seq)  # an old one, the unanswered one, or one past a gap
    assert exc.value.status == 409


def test_session_goes_stale_after_its_last_request() -> None:
    now = [100.0]
    state = SessionState(clock=lambda: now[0])
    now[0] += 44
    assert not state.stale()
    state.request(0)
    now[0] += 46
    assert state.stale()


@pytest.mark.parametrize("value", [None, "", "-1", "x", "1" * 19])
def test_invalid_sequence_header_is_a_400(value) -> None:
    with pytest.raises(MeekError) as exc:
        parse_seq(value)
    assert exc.value.status == 400


async def _read_all(data: bytes, count: int) -> list[http11.Message | None]:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return [await http11.read_message(reader) for _ in range(count)]


def test_http_messages_round_trip_back_to_back() -> None:
    body = os.urandom(3000)
    raw = http11.request("POST", "/", [("Host", "b.test"), ("Cookie", "A=x")], body)
    raw += http11.response(200, [("Content-Type", "application/octet-stream")], b"ok")

    req, resp, end = asyncio.run(_read_all(raw, 3))
    assert req.start == "POST / HTTP/1.1" and req.get("host") == "b.test" and req.body == body
    assert resp.status == 200 and resp.body == b"ok"
    assert end is None  # clean close between messages


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411),
        (b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a", 400),
    ],
)
def test_bad_http_messages_are_refused(raw: bytes, status: int) -> None:
    with pytest.raises(http11.HttpError) as exc:
        asyncio.run(_read_all(raw, 1))
    assert exc.value.status == status


def test_meek_server_resends_a_lost_response_and_refuses_a_gap() -> None:
    """A real OSSH server behind the meek server: the first request carries a valid seed
    message; its repeat (a client retry) gets the same bytes without re-feeding OSSH."""

    async def go():
        meek = MeekServer(OsshServer("kw", "pw"))
        preamble, _ = obfuscator.client_preamble(b"kw")
        cookie = "Q=" + "a" * 22

        def req(seq: int, body: bytes) -> http11.Message:
            return http11.Message("POST / HTTP/1.1", [("Cookie", cookie), (SEQ_HEADER, str(seq))],
                                  body)  # fmt: skip

        first = await meek._dispatch(req(0, preamble), "10.0.0.1")
        for _ in range(20):  # the server's padding and version line may take a few polls
            if first[1]:
                break
            first = await meek._dispatch(req(0, b""), "10.0.0.1")
        again = await meek._dispatch(req(0, b""), "10.0.0.1")
        gap = await meek._dispatch(req(5, b""), "10.0.0.1")
        stranger = http11.Message("POST / HTTP/1.1", [("Cookie", "Q=" + "b" * 22),
                                                      (SEQ_HEADER, "3")], b"")  # fmt: skip
        unknown = await meek._dispatch(stranger, "10.0.0.2")
        not_post = await meek._dispatch(http11.Message("GET / HTTP/1.1", [], b""), "x")
        for sid in list(meek.sessions):
            meek._end(sid, "test over")
        return first, again, gap, unknown, not_post

    first, again, gap, unknown, not_post = asyncio.run(go())
    assert first[0] == 200 and first[1]
    assert again == first
    assert gap == (409, b"") and unknown == (404, b"") and not_post == (404, b"")


def test_a_whole_meek_session_on_loopback_keeps_the_stream_in_order(tmp_path: Path) -> None:
    """Client -> TLS front (SNI front name, Host backend) -> meek server -> OSSH -> SSH
    direct-tcpip -> a TCP sink that hashes what it got; 2 MB each way, then the client's
    TLS connection is cut mid-session and the stream goes on."""
    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue("front", ["front.test"], ["127.0.0.1"], tmp_path)
    up = os.urandom(2 << 20)

    async def go():
        async def echo(reader, writer):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
            writer.close()

        sink = await asyncio.start_server(echo, "127.0.0.1", 0)
        meek = MeekServer(OsshServer("kw", "pw"))
        origin = await asyncio.start_server(meek.handle, "127.0.0.1", 0)
        oport = origin.sockets[0].getsockname()[1]
        front = Front({"backend.test": ("127.0.0.1", oport)}, str(cert), str(key))
        edge = await asyncio.start_server(front.handle, "127.0.0.1", 0, ssl=front.ssl)
        fport = edge.sockets[0].getsockname()[1]
        client = MeekClient(f"127.0.0.1:{fport}", "front.test", "backend.test",
                            str(ca.cert_path))  # fmt: skip
        conn = await asyncio.wait_for(connect_over(client.dial, "kw", "pw"), 15)
        reader, writer = await conn.open_connection(*sink.sockets[0].getsockname()[:2])

        async def receive(n: int) -> bytes:
            got = bytearray()
            while len(got) < n:
                got += await reader.read(65536)
            return bytes(got)

        half = len(up) // 2
        writer.write(up[:half])
        first = await asyncio.wait_for(receive(half), 30)
        client._drop()  # the TLS connection to the front dies; the next round trip redials
        writer.write(up[half:])
        second = await asyncio.wait_for(receive(len(up) - half), 30)
        conn.close()
        for server in (sink, origin, edge):
            server.close()
        return first + second, dict(client.stats), front

    got, stats, _front = asyncio.run(go())
    assert hashlib.sha256(got).digest() == hashlib.sha256(up).digest()
    assert stats["requests"] > 10 and stats["up_bytes"] > len(up)  # SSH framing on top
