"""DTLS over UDP (RFC 6347, RFC 9147 plaintext records): record header and ClientHello.

A DTLS record: type(1) version(2) epoch(2) sequence(6) length(2); handshake messages add
type(1) length(3) message_seq(2) fragment_offset(3) fragment_length(3) (RFC 6347 §4.2.2).
WebRTC media keys are agreed this way; `use_srtp` in the ClientHello (RFC 5764 §4.1.1) is
the tell-tale of a call rather than, say, a VPN. WebRTC sends STUN connectivity checks (and
later RTP) on the same 5-tuple before and after the DTLS handshake; they are told apart by
the first byte (RFC 7983 §7) and skipped, not counted as failed tries: otherwise a few ICE
checks would make the analyzer give up before the ClientHello arrives.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers._hello import parse_client_hello, parse_server_hello, version_name
from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

HANDSHAKE = 22
DTLS_VERSIONS = (0xFEFF, 0xFEFD, 0xFEFC)  # 1.0, 1.2, 1.3 (1.3 records say 1.2)
RECORD_HEADER = 13
HANDSHAKE_HEADER = 12
CLIENT_HELLO, SERVER_HELLO, HELLO_VERIFY_REQUEST = 1, 2, 3


def multiplexed(first: int) -> bool:
    """A datagram another protocol of the same WebRTC 5-tuple sends (RFC 7983 §7): STUN
    (0-3), ZRTP (16-19), TURN channel data (64-79), RTP/RTCP (128-191)."""
    return first <= 3 or 16 <= first <= 19 or 64 <= first <= 79 or 128 <= first <= 191


def records(data: bytes) -> list[tuple[int, int, bytes]]:
    """(content type, version, fragment) of the DTLS records in one datagram."""
    out = []
    pos = 0
    while pos + RECORD_HEADER <= len(data):
        version = (data[pos + 1] << 8) | data[pos + 2]
        if version not in DTLS_VERSIONS or not 20 <= data[pos] <= 25:
            break
        length = (data[pos + 11] << 8) | data[pos + 12]
        fragment = data[pos + RECORD_HEADER : pos + RECORD_HEADER + length]
        if len(fragment) < length:
            break
        out.append((data[pos], version, fragment))
        pos += RECORD_HEADER + length
    return out


def handshake(fragment: bytes) -> tuple[int, bytes, bool] | None:
    """(message type, body, whole) of a handshake fragment; whole = not fragmented."""
    if len(fragment) < HANDSHAKE_HEADER:
        return None
    length = int.from_bytes(fragment[1:4], "big")
    offset = int.from_bytes(fragment[6:9], "big")
    frag_len = int.from_bytes(fragment[9:12], "big")
    body = fragment[HANDSHAKE_HEADER : HANDSHAKE_HEADER + frag_len]
    return fragment[0], body, offset == 0 and frag_len == length == len(body)


class DtlsStream(Stream):
    __slots__ = ("seen", "tries")

    def __init__(self) -> None:
        self.seen = [False, False]
        self.tries = 0

    def feed(self, rev: bool, data: bytes) -> Update:
        side = 1 if rev else 0
        found = records(data)
        if not found:
            if data and multiplexed(data[0]):
                return None, False
            self.tries += 1
            return None, self.tries >= 4 and not any(self.seen)
        props: dict[str, Any] = {}
        for content_type, version, fragment in found:
            if not self.seen[side]:
                self.seen[side] = True
                props["yes" if side == 0 else "server_yes"] = True
                props["record_version" if side == 0 else "server_record_version"] = version_name(
                    version
                )
            if content_type != HANDSHAKE:
                continue
            message = handshake(fragment)
            if message is None:
                continue
            msg_type, body, whole = message
            # Either side: a UDP flow's "client" is whoever sent first, and in WebRTC both
            # peers send ICE checks before the DTLS client (the SDP's active side, RFC 5763
            # §5) sends its ClientHello; which check comes first is a race.
            if msg_type == CLIENT_HELLO:
                props["client_hello"] = True
                hello = parse_client_hello(body, dtls=True, partial=not whole)
                if hello is not None:
                    props.update(hello)
            elif msg_type == HELLO_VERIFY_REQUEST:
                props["hello_verify_request"] = True
            elif msg_type == SERVER_HELLO and whole:
                props.update(parse_server_hello(body) or {"server_hello": True})
        return props or None, "server_hello" in props  # the client spoke before it


class DtlsAnalyzer(Analyzer):
    """`dtls.*`: yes, record_version (the side that sent first), server_yes,
    server_record_version (the other side); from whichever side sends them: client_hello,
    sni, alpn, use_srtp, version, supported_versions, extensions, hello_verify_request,
    server_hello, server_version, cipher."""

    name = "dtls"
    limit = 16384

    def new_udp(self, info: FlowInfo) -> Stream:
        return DtlsStream()
