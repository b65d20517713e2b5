"""TLS over TCP: record-header sanity, ClientHello (SNI, ALPN, versions), ServerHello.

Records (RFC 8446 §5.1): type(1) version(2) length(2). A handshake message (§4) can span
records, and a record can span TCP segments. With `reassemble=True` the stream buffers until
the whole first handshake message is there; with `reassemble=False` it looks only at the
first segment of each direction, as censors that inspect packets one by one do (the GFW's
SNI filter in some paths, Iran's protocol filter): then an SNI beyond that first segment is
never seen, which is what TCP-segmentation evasion exploits.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers._hello import parse_client_hello, parse_server_hello, version_name
from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

HANDSHAKE = 22
CLIENT_HELLO = 1
SERVER_HELLO = 2
MAX_RECORD = 16384 + 2048  # TLSCiphertext limit (RFC 8446 §5.2)


def looks_like_record(data: bytes) -> bool:
    """A plausible TLS record header: content type 20-24, version 3.x (x <= 4), sane length."""
    return (
        len(data) >= 5
        and 20 <= data[0] <= 24
        and data[1] == 3
        and data[2] <= 4
        and 0 < ((data[3] << 8) | data[4]) <= MAX_RECORD
    )


NEED_MORE = "need-more"
NOT_HANDSHAKE = "not-handshake"


def first_handshake(buf: bytes, *, partial: bool) -> tuple[int, bytes, bool] | str:
    """The first handshake message in a record stream: (type, body, complete).

    Returns NEED_MORE when the message is not all there yet (only when not partial: a
    partial reader takes what it has) and NOT_HANDSHAKE when the records are not handshake
    records or are malformed.
    """
    pos = 0
    hs = bytearray()
    while pos + 5 <= len(buf):
        if buf[pos] != HANDSHAKE or buf[pos + 1] != 3:
            if not hs:
                return NOT_HANDSHAKE
            break
        length = (buf[pos + 3] << 8) | buf[pos + 4]
        if length == 0 or length > MAX_RECORD:
            return NOT_HANDSHAKE
        fragment = buf[pos + 5 : pos + 5 + length]
        hs += fragment
        pos += 5 + length
        if len(fragment) < length:
            break
        if len(hs) >= 4 and len(hs) >= 4 + int.from_bytes(hs[1:4], "big"):
            break
    if len(hs) < 4:
        return NOT_HANDSHAKE if partial else NEED_MORE
    msg_len = int.from_bytes(hs[1:4], "big")
    if len(hs) >= 4 + msg_len:
        return hs[0], bytes(hs[4 : 4 + msg_len]), True
    if partial:
        return hs[0], bytes(hs[4:]), False
    return NEED_MORE


class TlsStream(Stream):
    __slots__ = ("bufs", "reassemble", "side_done", "started")

    def __init__(self, reassemble: bool) -> None:
        self.reassemble = reassemble
        self.bufs = [b"", b""]
        self.side_done = [False, False]
        self.started = [False, False]

    def feed(self, rev: bool, data: bytes) -> Update:
        side = 1 if rev else 0
        if self.side_done[side]:
            return None, all(self.side_done)
        props: dict[str, Any] = {}
        buf = self.bufs[side] + data if self.reassemble else data
        if not self.started[side]:
            if self.reassemble and len(buf) < 5:
                self.bufs[side] = buf
                return None, False
            self.started[side] = True
            looks = looks_like_record(buf)
            if side == 0:
                props["looks_like"] = looks
                if looks:
                    props["record_version"] = version_name(0x0300 | buf[2])
            if not looks:
                self.side_done[side] = True
                if side == 0:  # the client does not speak TLS: nothing more to learn
                    self.side_done[1] = True
                return props, all(self.side_done)
        found = first_handshake(buf, partial=not self.reassemble)
        if found == NEED_MORE:
            self.bufs[side] = buf
            return props or None, False
        self.bufs[side] = b""
        self.side_done[side] = True
        if isinstance(found, tuple):
            msg_type, body, complete = found
            props.update(self._hello(side, msg_type, body, complete))
        return props or None, all(self.side_done)

    @staticmethod
    def _hello(side: int, msg_type: int, body: bytes, complete: bool) -> dict[str, Any]:
        if side == 0:
            props: dict[str, Any] = {"handshake_type": msg_type}
            if msg_type == CLIENT_HELLO:
                hello = parse_client_hello(body, partial=not complete)
                if hello is not None:
                    props.update(hello)
                    if not complete:
                        props["truncated"] = True
            return props
        if msg_type == SERVER_HELLO and complete:
            return parse_server_hello(body) or {}
        return {}


class TlsAnalyzer(Analyzer):
    """`tls.*`: looks_like, record_version, handshake_type, handshake, sni, alpn,
    client_version, supported_versions, version, ech, extensions, truncated; from the server:
    server_hello, server_version, cipher, server_alpn, hello_retry_request."""

    name = "tls"

    @staticmethod
    def recognises(props: dict[str, Any]) -> bool:
        """A ClientHello."""
        return props.get("handshake") == "client_hello"

    limit = 16384

    def __init__(self, reassemble: bool = True) -> None:
        self.reassemble = reassemble

    def new_tcp(self, info: FlowInfo) -> Stream:
        return TlsStream(self.reassemble)
