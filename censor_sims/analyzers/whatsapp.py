"""WhatsApp's chat transport: the clear "WA" prologue before its Noise handshake.

The client's first bytes on TCP 443/5222 (and inside wss://web.whatsapp.com/ws/chat) are
the Noise prologue `W A <major> <dictionary version>`, then 3-byte big-endian frame lengths
(Baileys `src/Socket/noise-handler.ts`, `encodeFrame`). Baileys `src/Defaults/index.ts`:
`NOISE_WA_HEADER = [87, 65, 6, DICT_VERSION]` with DICT_VERSION 3, i.e. `57 41 06 03`;
earlier Baileys releases (and other public clients) sent `[87, 65, 5, 2]`. Accepted here:
"WA", major 5 or 6, dictionary version 1-9 (`known_version` tells whether it is one of the
two seen in the field). With edge routing info the prologue is preceded by `E D 00 01`, a
3-byte length and the routing bytes. The first frame is a HandshakeMessage protobuf whose
field 2 (clientHello, tag 0x12) carries the ephemeral key: `client_hello` when that tag is
where it should be.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

KNOWN_VERSIONS = {(6, 3), (5, 2)}
MAJORS = (5, 6)
ROUTING_PREFIX = b"ED\x00\x01"
HANDSHAKE_CLIENT_HELLO_TAG = 0x12  # field 2, wire type 2 (length-delimited)
MAX_ROUTING = 4096


def parse_intro(data: bytes) -> dict[str, Any] | None:
    """The prologue (and routing preface) at the start of the client's stream."""
    pos = 0
    props: dict[str, Any] = {}
    if data.startswith(ROUTING_PREFIX):
        if len(data) < 7:
            return None
        routing = int.from_bytes(data[4:7], "big")
        if routing > MAX_ROUTING:
            return None
        pos = 7 + routing
        props["routing_info"] = True
    header = data[pos : pos + 4]
    if len(header) < 4 or header[:2] != b"WA" or header[2] not in MAJORS or not 1 <= header[3] <= 9:
        return None
    version = (header[2], header[3])
    props.update(
        yes=True,
        version=f"{version[0]}.{version[1]}",
        known_version=version in KNOWN_VERSIONS,
    )
    frame = data[pos + 4 :]
    if len(frame) >= 4:
        props["frame_length"] = int.from_bytes(frame[:3], "big")
        props["client_hello"] = frame[3] == HANDSHAKE_CLIENT_HELLO_TAG
    return props


class WhatsAppStream(Stream):
    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def feed(self, rev: bool, data: bytes) -> Update:
        if rev:
            return None, False
        buf = self.buf + data
        if _incomplete(buf):
            self.buf = buf  # too short to tell (a prologue split over segments?)
            return None, False
        return parse_intro(buf), True


def _incomplete(buf: bytes) -> bool:
    """The start of a prologue (or routing preface) that needs more bytes to be read."""
    if buf.startswith(ROUTING_PREFIX) and len(buf) >= 7:
        routing = int.from_bytes(buf[4:7], "big")
        return routing <= MAX_ROUTING and len(buf) < 7 + routing + 8
    if len(buf) >= 8:
        return False
    return ROUTING_PREFIX.startswith(buf[:4]) or b"WA".startswith(buf[:2])


class WhatsAppAnalyzer(Analyzer):
    """`whatsapp.*`: yes, version ("6.3"), known_version, routing_info, frame_length,
    client_hello (the first frame starts like a Noise HandshakeMessage.clientHello)."""

    name = "whatsapp"
    limit = 8192

    def new_tcp(self, info: FlowInfo) -> Stream:
        return WhatsAppStream()
