"""The SDP we offer and accept (RFC 4566, RFC 3264): one audio stream, PCMU/8000, 20 ms."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

PCMU = 0


@dataclass(frozen=True)
class AudioOffer:
    """Where the peer wants its RTP and which payload types it takes."""

    address: str
    port: int
    payload_types: tuple[int, ...]


def build(address: str, port: int, session_id: int | None = None) -> bytes:
    """An offer or answer for PCMU at `address:port` (c= is the UA's own address: behind a
    proxy that is not where its packets come from, which is why the callee latches)."""
    sid = session_id if session_id is not None else secrets.randbelow(2**31)
    lines = [
        "v=0",
        f"o=- {sid} {sid} IN IP4 {address}",
        "s=gatecrash",
        f"c=IN IP4 {address}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {PCMU}",
        f"a=rtpmap:{PCMU} PCMU/8000",
        "a=ptime:20",
        "a=sendrecv",
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def parse_audio(body: bytes) -> AudioOffer:
    """The first audio stream; media-level c= overrides the session's. ValueError if none."""
    session_addr: str | None = None
    media_addr: str | None = None
    port: int | None = None
    pts: tuple[int, ...] = ()
    in_audio = seen_media = False
    for raw in body.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("m="):
            if port is not None:
                break  # only the first audio stream is used
            fields = line[2:].split()
            seen_media = True
            in_audio = len(fields) >= 3 and fields[0] == "audio"
            if in_audio:
                port = int(fields[1])
                pts = tuple(int(pt) for pt in fields[3:] if pt.isdigit())
        elif line.startswith("c="):
            fields = line[2:].split()
            if len(fields) < 3 or fields[1] != "IP4":
                continue
            addr = fields[2].split("/")[0]
            if not seen_media:
                session_addr = addr
            elif in_audio:
                media_addr = addr
    address = media_addr or session_addr
    if port is None or address is None:
        raise ValueError("SDP has no audio stream with an IPv4 connection address")
    return AudioOffer(address, port, pts)
