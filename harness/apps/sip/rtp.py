"""RTP for the call: G.711 mu-law (PT 0), 20 ms frames, 8 kHz clock, one socket per side.

Each packet's payload starts with the sender's time.monotonic_ns() (8 bytes, big-endian);
all hosts of a run share one kernel clock, so receive time minus that is the one-way delay.
The sender keeps an absolute schedule (start + i * 20 ms) so that its own timer slips never
accumulate into drift or into the jitter we measure.
"""

from __future__ import annotations

import asyncio
import errno
import math
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass

from harness.media.rtpstats import ReceiverStats
from harness.net import socks5
from harness.net.socks5 import ProxyAddress

Address = tuple[str, int]

PT_PCMU = 0
CLOCK_RATE = 8000
FRAME_S = 0.020
# After the hang-up: a stream quiet for five frame intervals has ended; a second at most
# (a censor's queue holds a quarter of a second at 72 kbit/s and 10 packets).
DRAIN_QUIET_S = 5 * FRAME_S
DRAIN_MOST_S = 1.0
SAMPLES = 160  # per 20 ms frame at 8 kHz, one byte each in G.711
HEADER = struct.Struct("!BBHII")  # V/P/X/CC, M/PT, sequence, timestamp, SSRC
STAMP = struct.Struct("!Q")


def mulaw_encode(sample: int) -> int:
    """One 16-bit linear sample to G.711 mu-law (bias 0x84, clip 32635)."""
    sign = 0x80 if sample < 0 else 0
    magnitude = min(-sample if sample < 0 else sample, 32635) + 0x84
    exponent = max(magnitude.bit_length() - 8, 0)
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def mulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    magnitude = ((((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)) - 0x84
    return -magnitude if code & 0x80 else magnitude


def tone_frame(freq: float = 1000.0, level: float = 0.25) -> bytes:
    """One frame of a sine tone; 1 kHz fits 20 whole periods in a frame, so every frame is
    the same and the audio is continuous."""
    return bytes(
        mulaw_encode(round(level * 32767 * math.sin(2 * math.pi * freq * n / CLOCK_RATE)))
        for n in range(SAMPLES)
    )


TONE = tone_frame()


@dataclass(frozen=True)
class RtpPacket:
    seq: int
    timestamp: int
    ssrc: int
    payload_type: int
    marker: bool
    payload: bytes

    @property
    def sent_ns(self) -> int | None:
        """The sender's monotonic clock at sending, when the payload carries it."""
        return STAMP.unpack_from(self.payload)[0] if len(self.payload) >= STAMP.size else None


def build_packet(
    seq: int, timestamp: int, ssrc: int, payload: bytes, marker: bool = False, pt: int = PT_PCMU
) -> bytes:
    return HEADER.pack(0x80, (0x80 if marker else 0) | pt, seq, timestamp, ssrc) + payload


def parse_packet(data: bytes) -> RtpPacket | None:
    """None for anything that is not RTP version 2 (e.g. a stray SIP or STUN datagram)."""
    if len(data) < HEADER.size or data[0] >> 6 != 2:
        return None
    first, second, seq, ts, ssrc = HEADER.unpack_from(data)
    offset = HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:  # header extension: 4-byte header, length in 32-bit words
        if len(data) < offset + 4:
            return None
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20 and end > offset:  # padding: the last byte says how much
        end -= data[-1]
    if end < offset:
        return None
    return RtpPacket(seq, ts, ssrc, second & 0x7F, bool(second & 0x80), data[offset:end])


class NoDestination(Exception):
    """The peer's address is not known yet."""


class RtpSender:
    """Our outgoing stream: random SSRC, sequence and timestamp origin (RFC 3550 5.1)."""

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self._send = send
        self.ssrc = secrets.randbits(32)
        self.first_seq = secrets.randbits(16)
        self.first_ts = secrets.randbits(32)
        self.sent = 0
        self.started: float | None = None
        self.stopped: float | None = None

    def packet(self, index: int, now_ns: int) -> bytes:
        seq = (self.first_seq + index) % 65536
        ts = (self.first_ts + index * SAMPLES) % (1 << 32)
        payload = STAMP.pack(now_ns) + TONE[STAMP.size :]
        return build_packet(seq, ts, self.ssrc, payload, marker=index == 0)

    async def run(self, stop: asyncio.Event, duration: float | None = None) -> None:
        """Send a frame every 20 ms on an absolute schedule until `stop` is set or
        `duration` seconds have passed. A late wake-up sends the overdue frame at once."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        self.started = time.monotonic()
        index = 0
        try:
            while not stop.is_set():
                due = start + index * FRAME_S
                if duration is not None and due >= start + duration:
                    break
                delay = due - loop.time()
                if delay > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                        break
                    except TimeoutError:
                        pass
                try:
                    self._send(self.packet(index, time.monotonic_ns()))
                    self.sent += 1
                except NoDestination:
                    pass  # nowhere to send yet: the frame is skipped, not lost
                except OSError:
                    # Refused locally (a firewall's EPERM, a queued ICMP error): the frame
                    # left the app and is lost on the way, like any other loss.
                    self.sent += 1
                index += 1
        finally:
            self.stopped = time.monotonic()

    @property
    def media_s(self) -> float:
        if self.started is None:
            return 0.0
        return (self.stopped or time.monotonic()) - self.started


# Linux socket option numbers (asm-generic, as on x86-64 and arm64); the socket module
# does not export them. SO_TIMESTAMPNS makes recvmsg carry the kernel's receive time.
SO_TIMESTAMPNS = 35
SCM_TIMESTAMPNS = SO_TIMESTAMPNS
TIMESPEC = struct.Struct("@qq")
_ICMP_ERRORS = {
    errno.ECONNREFUSED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EACCES,
    errno.EPERM,
}
ANCILLARY_SIZE = socket.CMSG_SPACE(TIMESPEC.size)


def kernel_arrival_ns(ancillary: list[tuple[int, int, bytes]]) -> int | None:
    """The receive time of a datagram on the monotonic clock, from its kernel timestamp
    (CLOCK_REALTIME), or None when the kernel gave none.

    Kernel timestamps are taken when the packet enters the host's network stack, the same
    instant a packet capture on that interface records: what we measure is the network
    (and the tool), not the latency of our own event loop."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPNS and len(data) >= TIMESPEC.size:
            sec, nsec = TIMESPEC.unpack_from(data)
            offset = time.clock_gettime_ns(time.CLOCK_REALTIME) - time.monotonic_ns()
            return sec * 1_000_000_000 + nsec - offset
    return None


class RtpEndpoint:
    """One side's media socket: sends our stream to `remote`, receives the peer's.

    With `latch` (symmetric RTP, "comedia"), once the first packet of the peer's stream
    arrives we send to that packet's source instead of the SDP address: behind a proxy the
    caller's SDP address is not where its packets come from. Through a SOCKS5 proxy the
    socket talks to the relay of a UDP ASSOCIATE (our own socket, so that kernel receive
    timestamps work there too). `via` says the path: "direct" or "socks-udp"."""

    def __init__(self, sock: socket.socket, latch: bool = False) -> None:
        self.sock = sock
        self.latch = latch
        self.remote: Address | None = None
        self.latched: Address | None = None
        self.stats = ReceiverStats(CLOCK_RATE)
        self.peer_ssrc: int | None = None
        self.first_packet = asyncio.Event()
        self.last_arrival = 0.0  # time.monotonic() of the peer's latest packet
        self.local: Address = sock.getsockname()[:2]
        self.via = "direct"
        self.sender = RtpSender(self._send_packet)
        self._control: asyncio.StreamWriter | None = None  # SOCKS5 association
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(sock.fileno(), self._readable)

    @classmethod
    async def open(
        cls,
        bind_ip: str,
        proxy: ProxyAddress | None = None,
        latch: bool = False,
        timeout: float = 10.0,
    ) -> RtpEndpoint:
        """A socket on `bind_ip` (any port), or one talking to a UDP ASSOCIATE relay."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        control: asyncio.StreamWriter | None = None
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            if proxy is None:
                sock.bind((bind_ip, 0))
                return cls(sock, latch)
            control, relay = await socks5.udp_associate(proxy, timeout)
            sock.connect(relay)
        except BaseException:
            sock.close()
            if control is not None:
                control.close()
            raise
        self = cls(sock, latch)
        self._control = control
        # The SDP advertises our own address with this socket's port: not reachable
        # directly, exactly what a real UA behind a proxy advertises.
        self.local = (bind_ip, sock.getsockname()[1])
        self.via = "socks-udp"
        return self

    def _readable(self) -> None:
        while True:
            try:
                data, ancillary, _, source = self.sock.recvmsg(4096, ANCILLARY_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _ICMP_ERRORS:
                    continue  # reported for an earlier send, and consumed by this read
                return
            arrival = kernel_arrival_ns(ancillary) or time.monotonic_ns()
            if self._control is not None:
                unwrapped = socks5.unwrap_datagram(data)
                if unwrapped is None:
                    continue
                data, source = unwrapped
            self._on_datagram(data, source[:2], arrival)

    def _on_datagram(self, data: bytes, source: Address, arrival_ns: int) -> None:
        packet = parse_packet(data)
        if packet is None:
            return
        if self.peer_ssrc is None:
            self.peer_ssrc = packet.ssrc
            if self.latch:
                self.latched = source
            self.first_packet.set()
        elif packet.ssrc != self.peer_ssrc:
            return  # one stream per call; anything else is not the peer's audio
        self.last_arrival = time.monotonic()
        self.stats.add(packet.seq, packet.timestamp, arrival_ns, packet.sent_ns)

    async def drain(
        self,
        quiet_s: float = DRAIN_QUIET_S,
        most_s: float = DRAIN_MOST_S,
        peer_sent: int | None = None,
    ) -> None:
        """After the hang-up, keep receiving while the peer's packets still arrive (those in
        flight count, also from behind a censor's queue), until all `peer_sent` are in, none
        came for `quiet_s`, or `most_s` passed. On an open network the count ends it at once;
        with losses it is `quiet_s` after the last packet."""
        start = time.monotonic()
        while (now := time.monotonic()) - start < most_s:
            if peer_sent is not None and self.stats.received >= peer_sent:
                return
            quiet = now - max(self.last_arrival, start)
            if quiet >= quiet_s:
                return
            step = min(quiet_s - quiet, most_s - (now - start))
            await asyncio.sleep(step if peer_sent is None else min(step, FRAME_S / 4))

    @property
    def destination(self) -> Address | None:
        return self.latched or self.remote

    def _send_packet(self, data: bytes) -> None:
        dest = self.destination
        if dest is None:
            raise NoDestination
        if self._control is not None:
            self.sock.send(socks5.wrap_datagram(data, dest))
        else:
            self.sock.sendto(data, dest)

    def close(self) -> None:
        self._loop.remove_reader(self.sock.fileno())
        self.sock.close()
        if self._control is not None:
            self._control.close()
