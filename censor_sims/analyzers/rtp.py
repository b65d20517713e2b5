"""RTP and RTCP over UDP, told from other traffic by what a run of packets has in common.

One packet proves little (any datagram starting 0x80 passes the version check), so the
stream publishes `rtp.yes` only after MIN_RUN consistent packets in one direction: version
2 (RFC 3550 §5.1), one SSRC, sequence numbers moving forward by small steps (a little
loss tolerated). RTCP shares the port under rtcp-mux; its packet types 200-204 (SR, RR,
SDES, BYE, APP; RFC 3550 §6.4-6.7) sit where RTP payload types 72-76 with the marker bit
would, which RFC 5761 §4 keeps free so the two can be told apart by the second byte.
The stream is done once `rtp.yes` is out (short hot path): RTCP is reported only when it
comes before that, as it does when a call starts with an RTCP report or on its own port.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

MIN_RUN = 3
MAX_STEP = 3  # sequence step still counted as "consecutive" (allows two lost packets)
RTCP_TYPES = {200: "SR", 201: "RR", 202: "SDES", 203: "BYE", 204: "APP"}
RTCP_FEEDBACK = {205: "RTPFB", 206: "PSFB", 207: "XR"}


def rtcp_types(data: bytes) -> list[str]:
    """Packet types of the RTCP compound packet in the datagram (RFC 3550 §6.1), in order.

    Walks the packets while their headers are valid; SRTCP's encrypted tail (RFC 3711
    §3.4) stops the walk but keeps the first packet, whose header is always in clear.
    """
    found: list[str] = []
    pos = 0
    while pos + 8 <= len(data) and data[pos] >> 6 == 2:
        name = RTCP_TYPES.get(data[pos + 1]) or RTCP_FEEDBACK.get(data[pos + 1])
        length = 4 * (((data[pos + 2] << 8) | data[pos + 3]) + 1)  # words - 1 (§6.4.1)
        if name is None or pos + length > len(data):
            break
        found.append(name)
        pos += length
    return found


class _Run:
    __slots__ = ("count", "payload_type", "seq", "ssrc")

    def __init__(self, ssrc: int, seq: int, payload_type: int) -> None:
        self.ssrc = ssrc
        self.seq = seq
        self.payload_type = payload_type
        self.count = 1


class RtpStream(Stream):
    __slots__ = ("published", "rtcp", "runs")

    def __init__(self) -> None:
        self.runs: list[_Run | None] = [None, None]
        self.published = False
        self.rtcp: list[str] = []

    def feed(self, rev: bool, data: bytes) -> Update:
        if len(data) < 8 or data[0] >> 6 != 2:
            return None, False
        kinds = rtcp_types(data)
        if kinds:
            new = [k for k in kinds if k not in self.rtcp]
            if not new:
                return None, False
            self.rtcp.extend(dict.fromkeys(new))
            return {"rtcp": True, "rtcp_types": list(self.rtcp)}, False
        if len(data) < 12 or not _header_fits(data):
            return None, False
        side = 1 if rev else 0
        seq = (data[2] << 8) | data[3]
        ssrc = int.from_bytes(data[8:12], "big")
        payload_type = data[1] & 0x7F
        run = self.runs[side]
        if run is not None and run.ssrc == ssrc and 0 < (seq - run.seq) % 65536 <= MAX_STEP:
            run.count += 1
            run.seq = seq
            run.payload_type = payload_type
        else:
            run = self.runs[side] = _Run(ssrc, seq, payload_type)
        if run.count >= MIN_RUN and not self.published:
            self.published = True
            props: dict[str, Any] = {
                "yes": True,
                "payload_type": run.payload_type,
                "ssrc": run.ssrc,
                "packets": run.count,
                "direction": "downstream" if rev else "upstream",
            }
            return props, True
        return None, False


def _header_fits(data: bytes) -> bool:
    """The fixed header, CSRC list and extension header (§5.3.1) fit in the datagram."""
    size = 12 + 4 * (data[0] & 0x0F)
    if data[0] & 0x10:
        if len(data) < size + 4:
            return False
        size += 4 + 4 * ((data[size + 2] << 8) | data[size + 3])
    return size <= len(data)


class RtpAnalyzer(Analyzer):
    """`rtp.*`: yes (after 3 consistent packets), payload_type, ssrc, packets, direction
    (of the run that decided); rtcp, rtcp_types (e.g. ["SR", "SDES"])."""

    name = "rtp"
    limit = 16384

    def new_udp(self, info: FlowInfo) -> Stream:
        return RtpStream()
