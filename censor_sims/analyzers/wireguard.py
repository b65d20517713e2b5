"""WireGuard: its four message types, fixed sizes and the index pairing between them.

Whitepaper (Donenfeld, NDSS 2017) §5.4: every message starts with a type byte and three
zero bytes. Handshake initiation (1) is 148 bytes with the sender index at 4; response (2)
92 bytes, sender index at 4 and receiver index (= the initiator's) at 8; cookie reply (3)
64 bytes; transport data (4) is 16 header bytes plus the AEAD output (a multiple of 16,
keepalives 32 bytes). Indices are little-endian. A response that echoes the initiator's
index is as good a fingerprint as there is, hence `handshake`.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

INITIATION, RESPONSE, COOKIE_REPLY, TRANSPORT = 1, 2, 3, 4
SIZES = {INITIATION: 148, RESPONSE: 92, COOKIE_REPLY: 64}
NAMES = {INITIATION: "initiation", RESPONSE: "response", COOKIE_REPLY: "cookie", TRANSPORT: "data"}


def message_type(data: bytes) -> int | None:
    """The WireGuard message type when the datagram has that type's exact shape."""
    if len(data) < 32 or data[1:4] != b"\x00\x00\x00":
        return None
    kind = data[0]
    if kind in SIZES:
        return kind if len(data) == SIZES[kind] else None
    if kind == TRANSPORT and len(data) % 16 == 0:
        return kind
    return None


def _index(data: bytes, at: int) -> int:
    return int.from_bytes(data[at : at + 4], "little")


class WireGuardStream(Stream):
    __slots__ = ("handshake", "indices", "invalid", "kinds")

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.indices: set[int] = set()
        self.handshake = False
        self.invalid = 0

    def feed(self, rev: bool, data: bytes) -> Update:
        kind = message_type(data)
        if kind is None:
            self.invalid += 1
            return None, self.invalid >= 4 and not self.kinds
        props: dict[str, Any] = {}
        name = NAMES[kind]
        if not self.kinds:
            props.update(yes=True, message_type=name)
        if name not in self.kinds:
            self.kinds.append(name)
            props["messages"] = list(self.kinds)
        if kind == INITIATION:
            self.indices.add(_index(data, 4))
            props.setdefault("sender_index", _index(data, 4))
        elif kind == RESPONSE and not self.handshake and _index(data, 8) in self.indices:
            self.handshake = True
            props["handshake"] = True
        elif kind == TRANSPORT and self.handshake:
            props["transport"] = True
            return props, True
        return props or None, False


class WireGuardAnalyzer(Analyzer):
    """`wireguard.*`: yes, message_type (of the first message: initiation, response,
    cookie, data), messages (types seen), sender_index, handshake (a response echoed the
    initiator's index), transport (data after a handshake)."""

    name = "wireguard"
    limit = 4096

    def new_udp(self, info: FlowInfo) -> Stream:
        return WireGuardStream()
