"""STUN and TURN (RFC 5389 / RFC 8489, RFC 8656): messages, and TURN ChannelData.

A STUN message has a 20-byte header whose top two bits are zero, a length that is a
multiple of 4 and the magic cookie 0x2112A442 (RFC 5389 §6); legacy RFC 3489 messages lack
the cookie and are not recognised. Over TCP, STUN messages are self-delimiting (§7.2.2),
and ICE-TCP (RFC 6544) frames them with RFC 4571's 2-byte length: both are understood.
ChannelData (RFC 8656 §12.4) is a 4-byte header (channel 0x4000-0x4FFF, length) and data.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

MAGIC_COOKIE = b"\x21\x12\xa4\x42"
HEADER = 20
METHODS = {
    0x001: "binding",
    0x002: "shared_secret",
    0x003: "allocate",
    0x004: "refresh",
    0x006: "send",
    0x007: "data",
    0x008: "create_permission",
    0x009: "channel_bind",
    0x00A: "connect",
    0x00B: "connection_bind",
    0x00C: "connection_attempt",
}
CLASSES = {0: "request", 1: "indication", 2: "success", 3: "error"}
ATTR_USERNAME = 0x0006
ATTR_SOFTWARE = 0x8022
ATTR_REALM = 0x0014
TURN_METHODS = frozenset(range(0x003, 0x00D))


def message_length(data: bytes) -> int | None:
    """Total length of the STUN message at the start of data, None if it is not one."""
    if len(data) < HEADER or data[0] & 0xC0 or data[4:8] != MAGIC_COOKIE:
        return None
    length = (data[2] << 8) | data[3]
    return None if length % 4 else HEADER + length


def parse_message(data: bytes) -> dict[str, Any] | None:
    """Method, class and a few attributes of one whole STUN message."""
    total = message_length(data)
    if total is None or total > len(data):
        return None
    msg_type = (data[0] << 8) | data[1]
    # The method's 12 bits are interleaved with the class bits C1 (bit 8) and C0 (bit 4).
    method = (msg_type & 0x000F) | ((msg_type & 0x00E0) >> 1) | ((msg_type & 0x3E00) >> 2)
    klass = ((msg_type >> 4) & 0x1) | ((msg_type >> 7) & 0x2)
    props: dict[str, Any] = {
        "yes": True,
        "method": METHODS.get(method, f"0x{method:03x}"),
        "class": CLASSES[klass],
        "turn": method in TURN_METHODS,
        "transaction_id": data[8:20].hex(),
    }
    pos = HEADER
    while pos + 4 <= total:
        attr_type = (data[pos] << 8) | data[pos + 1]
        attr_len = (data[pos + 2] << 8) | data[pos + 3]
        value = data[pos + 4 : pos + 4 + attr_len]
        if len(value) < attr_len:
            break
        if attr_type == ATTR_SOFTWARE:
            props["software"] = value.decode("utf-8", "replace")
        elif attr_type == ATTR_USERNAME:
            props["username"] = value.decode("utf-8", "replace")
        elif attr_type == ATTR_REALM:
            props["realm"] = value.decode("utf-8", "replace")
        pos += 4 + attr_len + (-attr_len % 4)
    return props


def channel_data(data: bytes, *, udp: bool) -> int | None:
    """The channel number when data is exactly one ChannelData message (RFC 8656 §12.5)."""
    if len(data) < 4 or not 0x40 <= data[0] <= 0x4F:
        return None
    length = (data[2] << 8) | data[3]
    padded = length + (-length % 4)
    fits = len(data) - 4 in (length, padded) if udp else len(data) - 4 == padded
    return (data[0] << 8) | data[1] if fits else None


class StunStream(Stream):
    __slots__ = ("framing", "seen", "tcp", "tries")

    def __init__(self, tcp: bool) -> None:
        self.tcp = tcp
        self.framing: str | None = None
        self.seen = [False, False]
        self.tries = 0

    def feed(self, rev: bool, data: bytes) -> Update:
        side = 1 if rev else 0
        props = self._tcp_message(data) if self.tcp else parse_message(data)
        if props is None and not self.tcp:
            channel = channel_data(data, udp=True)
            if channel is not None and any(self.seen):
                props = {"channel_data": True, "channel": channel}
        if props is None:
            self.tries += 1
            return None, self.tries >= 4 and not any(self.seen)
        if props.get("yes"):
            self.seen[side] = True
            props = {k if side == 0 else f"response_{k}": v for k, v in props.items()}
            if side == 1:
                props.pop("response_yes", None)
        return props, all(self.seen)

    def _tcp_message(self, data: bytes) -> dict[str, Any] | None:
        """A STUN message at the start of a segment, bare or with RFC 4571 framing."""
        if self.framing != "rfc4571":
            props = parse_message(data)
            if props is not None:
                self.framing = "none"
                props["framing"] = "none"
                return props
        if self.framing != "none" and len(data) >= 2:
            framed = (data[0] << 8) | data[1]
            props = parse_message(data[2 : 2 + framed])
            if props is not None and message_length(data[2:]) == framed:
                self.framing = "rfc4571"
                props["framing"] = "rfc4571"
                return props
        return None


class StunAnalyzer(Analyzer):
    """`stun.*` from the client: yes, method (binding, allocate, ...), class (request,
    indication, success, error), turn (a TURN method), transaction_id, software, username,
    realm, framing (TCP: none or rfc4571), channel_data, channel; the server's message as
    response_method, response_class, response_software, ..."""

    name = "stun"
    limit = 8192

    def new_udp(self, info: FlowInfo) -> Stream:
        return StunStream(tcp=False)

    def new_tcp(self, info: FlowInfo) -> Stream:
        return StunStream(tcp=True)
