"""What the peers send: a generated tone as audio, and timestamped probes for one-way delay.

One-way delay: every 20 ms each side sends its wall-clock time (time.time()) on an
unordered data channel with no retransmission, bundled on the same ICE pair and DTLS
session as the audio, so the probes take the audio's path through the censor and the tool.
All hosts of a trial share one kernel clock, so receive time minus send time is the delay.
SCTP and DTLS add well under a millisecond on top of the network path.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import math
import struct
import time
from typing import Any

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame

from harness.media.rtpstats import ReceiverStats

RATE = 48000
PTIME_S = 0.020
SAMPLES = int(RATE * PTIME_S)  # 960
TONE_HZ = 400  # a whole number of periods per 20 ms frame, so one frame repeats seamlessly
PROBE_LABEL = "owd"


def _tone_frame() -> bytes:
    return b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * TONE_HZ * i / RATE)))
        for i in range(SAMPLES)
    )


class ToneTrack(MediaStreamTrack):
    """A 400 Hz tone, 48 kHz mono, paced in real time; ends (MediaStreamError) when stopped."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pcm = _tone_frame()
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        else:
            self._pts += SAMPLES
            wait = self._start + self._pts / RATE - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        if self.readyState != "live":
            raise MediaStreamError
        frame = AudioFrame(format="s16", layout="mono", samples=SAMPLES)
        frame.planes[0].update(self._pcm)
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        return frame


class RtpTap:
    """The loss pattern behind BurstR. aiortc's statistics give only counts, and its audio
    jitter buffer turns each hole into a longer gap (it stalls at the hole and, when it
    overflows, drops the frames it held ahead of it), so decoded frames would overstate the
    bursts. The pattern
    is taken from the RTP packets as they arrive, after SRTP and before that buffer, by
    wrapping the receiver's packet handler (aiortc 1.16: RTCRtpReceiver._handle_rtp_packet,
    which the DTLS transport awaits with arrival_time_ms; tests/unit/test_webrtc.py guards
    the hook)."""

    def __init__(self, clock_rate: int) -> None:
        self.stats = ReceiverStats(clock_rate)
        self.payload_bytes = 0  # RTP payload received (aiortc's stats have no byte count)

    def attach(self, receiver: Any) -> None:
        handle = receiver._handle_rtp_packet

        async def tapped(packet: Any, arrival_time_ms: int) -> None:
            self.stats.add(packet.sequence_number, packet.timestamp, time.monotonic_ns())
            self.payload_bytes += len(packet.payload)
            await handle(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = tapped

    def summary(self) -> dict[str, float]:
        s = self.stats.summary()
        return {"burst_r": s["burst_r"], "mean_burst_len": s["mean_burst_len"]}


class DelayProbes:
    """Sends wall-clock stamps on a data channel and turns received ones into delays (ms)."""

    def __init__(self) -> None:
        self.delays_ms: list[float] = []
        self.sent = 0
        self.channel: object | None = None

    def attach(self, channel: object) -> None:
        self.channel = channel
        channel.on("message", self._on_message)  # type: ignore[attr-defined]

    def _on_message(self, message: str | bytes) -> None:
        try:
            stamp = float(json.loads(message)["t"])
        except (ValueError, KeyError, TypeError):
            return
        self.delays_ms.append((time.time() - stamp) * 1000.0)

    def send_once(self) -> None:
        channel = self.channel
        if channel is not None and getattr(channel, "readyState", "") == "open":
            channel.send(json.dumps({"t": time.time()}))  # type: ignore[attr-defined]
            self.sent += 1

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.send_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PTIME_S)

    def summary(self) -> dict[str, float | int | None]:
        values = sorted(self.delays_ms)
        if not values:
            return {"probes_sent": self.sent, "probes_received": 0, "mean_ms": None, "p95_ms": None}
        p95 = values[min(len(values) - 1, math.ceil(0.95 * len(values)) - 1)]
        return {
            "probes_sent": self.sent,
            "probes_received": len(values),
            "mean_ms": round(sum(values) / len(values), 3),
            "p95_ms": round(p95, 3),
        }
