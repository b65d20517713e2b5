"""RTP packets, G.711 mu-law, the sender's absolute schedule, kernel timestamps."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from harness.apps.sip.rtp import (
    SAMPLES,
    SCM_TIMESTAMPNS,
    STAMP,
    TIMESPEC,
    TONE,
    RtpEndpoint,
    RtpSender,
    build_packet,
    kernel_arrival_ns,
    mulaw_decode,
    mulaw_encode,
    parse_packet,
)


def test_mulaw_reference_values_and_round_trip() -> None:
    # G.711 Table 2: zero is 0xFF; full scale is 0x80 (positive) and 0x00 (negative).
    assert mulaw_encode(0) == 0xFF
    assert mulaw_encode(32767) == 0x80 and mulaw_encode(-32768) == 0x00
    assert mulaw_decode(0xFF) == 0 and mulaw_decode(0x80) == 32124
    for sample in range(-32000, 32000, 97):
        back = mulaw_decode(mulaw_encode(sample))
        assert abs(back - sample) <= max(abs(sample) // 16, 8)  # log quantiser step


def test_tone_frame_is_160_bytes_of_a_sine() -> None:
    assert len(TONE) == SAMPLES
    decoded = [mulaw_decode(b) for b in TONE]
    assert max(decoded) > 7000 and min(decoded) < -7000
    assert decoded[:8] == decoded[8:16]  # 1 kHz at 8 kHz: period of 8 samples


def test_packet_round_trip_and_payload_stamp() -> None:
    data = build_packet(65535, 2**32 - 1, 0xDEADBEEF, STAMP.pack(123) + b"x", marker=True)
    packet = parse_packet(data)
    assert packet is not None
    assert (packet.seq, packet.timestamp, packet.ssrc) == (65535, 2**32 - 1, 0xDEADBEEF)
    assert packet.marker and packet.payload_type == 0 and packet.sent_ns == 123


def test_parse_skips_csrc_extension_and_padding() -> None:
    header = bytes([0x80 | 0x20 | 0x10 | 0x01, 0, 0, 1]) + bytes(8)  # P, X, CC=1
    csrc = bytes(4)
    extension = b"\xbe\xde\x00\x01" + bytes(4)
    packet = parse_packet(header + csrc + extension + b"audio" + b"\x00\x00\x03")
    assert packet is not None and packet.payload == b"audio"


def test_parse_rejects_what_is_not_rtp() -> None:
    assert parse_packet(b"SIP/2.0 200 OK\r\n\r\n") is None  # version 1 in the first bits
    assert parse_packet(b"\x80\x00") is None


def test_sender_packets_follow_sequence_and_timestamp() -> None:
    sender = RtpSender(lambda data: None)
    sender.first_seq, sender.first_ts = 65534, 2**32 - SAMPLES
    packets = [parse_packet(sender.packet(i, 1000 + i)) for i in range(4)]
    assert [p.seq for p in packets if p] == [65534, 65535, 0, 1]
    assert [p.timestamp for p in packets if p] == [2**32 - SAMPLES, 0, SAMPLES, 2 * SAMPLES]
    assert [p.marker for p in packets if p] == [True, False, False, False]
    assert all(p is not None and len(p.payload) == SAMPLES for p in packets)


def test_sender_keeps_an_absolute_schedule() -> None:
    """A stall of 100 ms is caught up at once: no drift, the count matches the duration."""
    sent: list[float] = []

    def send(data: bytes) -> None:
        sent.append(time.monotonic())
        if len(sent) == 3:
            time.sleep(0.1)  # the event loop is blocked: five frames become overdue

    async def go() -> RtpSender:
        sender = RtpSender(send)
        await sender.run(asyncio.Event(), duration=0.4)
        return sender

    sender = asyncio.run(go())
    assert sender.sent == len(sent) == 20
    start = sender.started or 0.0
    # Never early; the frames after the stall go out back to back, then back on the grid.
    assert all(t >= start + i * 0.020 - 0.002 for i, t in enumerate(sent))
    assert sent[7] - sent[3] < 0.015
    assert sent[-1] - (start + 19 * 0.020) < 0.015


def test_sender_stops_when_told() -> None:
    async def go() -> int:
        stop = asyncio.Event()
        sender = RtpSender(lambda data: None)
        task = asyncio.ensure_future(sender.run(stop))
        await asyncio.sleep(0.1)
        stop.set()
        await asyncio.wait_for(task, 1.0)
        return sender.sent

    assert 3 <= asyncio.run(go()) <= 8


def test_kernel_timestamp_is_converted_to_the_monotonic_clock() -> None:
    now_rt = time.clock_gettime_ns(time.CLOCK_REALTIME)
    stamp = TIMESPEC.pack(now_rt // 10**9, now_rt % 10**9)
    arrival = kernel_arrival_ns([(socket.SOL_SOCKET, SCM_TIMESTAMPNS, stamp)])
    assert arrival is not None
    assert arrival == pytest.approx(time.monotonic_ns(), abs=5_000_000)
    assert kernel_arrival_ns([]) is None


def test_drain_after_the_hang_up_waits_for_packets_in_flight_then_for_quiet() -> None:
    """Packets still arriving after the BYE (from behind a censor's queue) are counted; the
    drain ends `quiet_s` after the last one, and at once-plus-quiet when none comes."""

    async def go() -> tuple[int, float, float]:
        rtp = await RtpEndpoint.open("127.0.0.1")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        async def in_flight() -> None:  # five packets 50 ms apart, as a queue releases them
            for seq in range(5):
                peer.sendto(build_packet(seq, seq * SAMPLES, 7, TONE), rtp.local)
                await asyncio.sleep(0.05)

        start = time.monotonic()
        sending = asyncio.ensure_future(in_flight())
        await rtp.drain(quiet_s=0.1, most_s=2.0)
        took = time.monotonic() - start
        await sending
        start = time.monotonic()
        await rtp.drain(quiet_s=0.1, most_s=2.0)  # nothing more in flight
        idle = time.monotonic() - start
        peer.close()
        rtp.close()
        return rtp.stats.received, took, idle

    received, took, idle = asyncio.run(go())
    assert received == 5
    assert 0.3 <= took < 1.5, took  # the last packet at ~0.2 s, then 0.1 s quiet (not 2 s)
    assert 0.1 <= idle < 1.0, idle


def test_drain_ends_once_every_packet_the_peer_sent_is_in() -> None:
    """The hang-up says how many packets the peer sent: with all of them in, the drain ends
    without waiting out the quiet spell; one short, it waits for quiet as before."""

    async def go() -> tuple[float, float]:
        rtp = await RtpEndpoint.open("127.0.0.1")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for seq in range(3):
            peer.sendto(build_packet(seq, seq * SAMPLES, 7, TONE), rtp.local)
        await asyncio.sleep(0.05)
        start = time.monotonic()
        await rtp.drain(quiet_s=0.5, most_s=2.0, peer_sent=3)
        complete = time.monotonic() - start
        start = time.monotonic()
        await rtp.drain(quiet_s=0.5, most_s=2.0, peer_sent=4)  # one was lost
        short = time.monotonic() - start
        peer.close()
        rtp.close()
        return complete, short

    complete, short = asyncio.run(go())
    assert complete < 0.1, complete
    assert 0.4 <= short < 1.5, short
