"""RTP loss and jitter recomputed from the censor's pcap, to check the app's own figures.

The app measures at its sockets; the pcap (`capture: true`) sees the packets as they leave
the censor on the receiver's side, decoded here by Wireshark's dissectors through pyshark
(heuristic RTP, so a capture without SIP/SDP still decodes). Each direction's egress leg is
what its receiver could get: up (client -> outside) leaves on the outside leg, down on the
inside leg. Loss and jitter follow the same RFC 3550 definitions as the app, so the two must
agree; a disagreement means one of them is wrong, and the report flags it.

Only cleartext RTP can be checked: through a tool the media is inside the tunnel.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.media.rtpstats import ReceiverStats

# dumpcap is started with the inside leg first (censor_sims/capture.py): pcapng interface ids.
INSIDE_LEG, OUTSIDE_LEG = 0, 1
CLOCK_RATES = {0: 8000, 8: 8000, 9: 8000, 18: 8000}  # G.711 u/A, G.722 (8 kHz clock), G.729

# Agreement limits: the capture point is one link before the receiver, so only packets lost
# or reordered on that last veth (none, in practice) and scheduling noise differ.
LOSS_TOLERANCE_PCT = 1.0
JITTER_TOLERANCE_MS = 0.5
JITTER_TOLERANCE_REL = 0.2


@dataclass
class StreamPackets:
    ssrc: str
    src: str
    dst: str
    leg: int
    payload_type: int
    packets: list[tuple[int, int, int]]  # (seq, rtp timestamp, arrival ns)


def read_rtp(pcap: Path) -> list[StreamPackets]:
    """Every RTP stream in the pcap, per (ssrc, leg), in capture order.

    pyshark, called from the main thread, installs a SafeChildWatcher on the main event
    loop: a process-wide SIGCHLD handler that nobody serves afterwards, so in a long-lived
    process (a test session) every later child exit fills its wakeup pipe ("BlockingIOError"
    warnings). It is detached again after reading. (In a thread of its own pyshark uses the
    threaded watcher instead, which lost tshark's exit status about 1 read in 6 here.)"""
    watcher = asyncio.get_child_watcher()
    try:
        return _read_rtp(pcap)
    finally:
        asyncio.get_child_watcher().attach_loop(None)  # removes its SIGCHLD handler
        asyncio.set_child_watcher(watcher)


def _read_rtp(pcap: Path) -> list[StreamPackets]:
    import pyshark  # imported here: tshark is needed only when a report checks a pcap

    streams: dict[tuple[str, int], StreamPackets] = {}
    capture = pyshark.FileCapture(
        str(pcap),
        display_filter="rtp && !icmp",
        custom_parameters=["--enable-heuristic", "rtp_udp"],
        keep_packets=False,
    )
    try:
        for pkt in capture:
            rtp, leg = pkt.rtp, int(pkt.frame_info.interface_id)
            key = (str(rtp.ssrc), leg)
            stream = streams.get(key)
            if stream is None:
                stream = streams[key] = StreamPackets(
                    str(rtp.ssrc), pkt.ip.src, pkt.ip.dst, leg, int(rtp.p_type), []
                )
            arrival_ns = _epoch_ns(str(pkt.sniff_timestamp))
            stream.packets.append((int(rtp.seq), int(rtp.timestamp), arrival_ns))
    finally:
        capture.close()
    return list(streams.values())


def _epoch_ns(stamp: str) -> int:
    """ "1795872265.619888269" -> ns, exactly (a float keeps only ~0.2 us at this size)."""
    seconds, _, fraction = stamp.partition(".")
    return int(seconds) * 1_000_000_000 + int((fraction + "000000000")[:9])


def stats_of(stream: StreamPackets) -> dict[str, Any]:
    receiver = ReceiverStats(CLOCK_RATES.get(stream.payload_type, 8000))
    for seq, timestamp, arrival_ns in stream.packets:
        receiver.add(seq, timestamp, arrival_ns)
    summary = receiver.summary()
    return {k: summary[k] for k in ("received", "expected", "lost", "loss_pct", "jitter_ms")}


def recompute(pcap: Path) -> dict[str, dict[str, Any]]:
    """{"up": stats, "down": stats}: each stream's figures on its egress leg.

    A packet crosses the censor in on one leg and out on the other microseconds later, so
    the leg where an SSRC shows first is where it came in; up is a stream that came in on
    the inside leg. A stream the censor dropped entirely has no egress packets: it is
    reported with nothing received."""
    by_ssrc: dict[str, dict[int, StreamPackets]] = {}
    for stream in read_rtp(pcap):
        stream.packets.sort(key=lambda p: p[2])  # pcapng blocks need not be in time order
        by_ssrc.setdefault(stream.ssrc, {})[stream.leg] = stream
    out: dict[str, dict[str, Any]] = {}
    for legs in by_ssrc.values():
        ingress = min(legs.values(), key=lambda s: s.packets[0][2])
        direction = "up" if ingress.leg == INSIDE_LEG else "down"
        egress = legs.get(OUTSIDE_LEG if ingress.leg == INSIDE_LEG else INSIDE_LEG)
        stats = stats_of(egress) if egress else {"received": 0, "expected": 0, "lost": 0,
                                                  "loss_pct": 100.0, "jitter_ms": 0.0}  # fmt: skip
        # As the app does: loss against what was sent (here: what reached the censor), since
        # RFC 3550's count misses lost tail packets.
        sent = stats["sent_seen"] = len(ingress.packets)
        stats["loss_pct"] = round(100.0 * max(sent - stats["received"], 0) / sent, 3)
        # A restarted stream (new SSRC) is rare; keep the longest per direction.
        if direction not in out or stats["sent_seen"] > out[direction]["sent_seen"]:
            out[direction] = stats
    return out


def agrees(app: dict[str, Any], pcap: dict[str, Any]) -> tuple[bool, str]:
    """Whether the app's and the pcap's figures of one direction agree, and why not."""
    loss_gap = abs(float(app.get("loss_pct", 0.0)) - float(pcap["loss_pct"]))
    jitter_gap = abs(float(app.get("jitter_ms", 0.0)) - float(pcap["jitter_ms"]))
    jitter_limit = max(JITTER_TOLERANCE_MS, JITTER_TOLERANCE_REL * float(pcap["jitter_ms"]))
    problems = []
    if loss_gap > LOSS_TOLERANCE_PCT:
        problems.append(f"loss differs by {loss_gap:.2f} points (limit {LOSS_TOLERANCE_PCT})")
    if jitter_gap > jitter_limit:
        problems.append(f"jitter differs by {jitter_gap:.3f} ms (limit {jitter_limit:.3f})")
    return (not problems, "; ".join(problems))
