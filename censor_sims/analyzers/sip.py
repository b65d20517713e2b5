"""SIP over UDP (one message per datagram) and TCP (messages framed by Content-Length).

RFC 3261 §7 (message format), §7.3.3 (compact header forms), §18.3 (TCP framing). The
properties are those a VoIP-blocking censor keys on: the method or status, the dialog's
Call-ID and the From/To addresses of record.
"""

from __future__ import annotations

import re
from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

REQUEST_LINE = re.compile(rb"([A-Z][A-Z-]{1,31}) ([^ \r\n]+) SIP/2\.0\r?\n")
STATUS_LINE = re.compile(rb"SIP/2\.0 (\d{3}) ?([^\r\n]*)\r?\n")
COMPACT = {b"i": b"call-id", b"f": b"from", b"t": b"to", b"l": b"content-length", b"v": b"via"}
ANGLE_URI = re.compile(r"<([^>]*)>")
MAX_MESSAGE = 65535


def _uri(value: str) -> str:
    """The URI of a From/To value: inside <...> if there, else up to the first parameter."""
    m = ANGLE_URI.search(value)
    return m.group(1) if m else value.split(";", 1)[0].strip()


def parse_head(head: bytes) -> dict[str, Any] | None:
    """Start line and the interesting headers of one message head; None if not SIP."""
    props: dict[str, Any] = {}
    m = REQUEST_LINE.match(head)
    if m:
        props["method"] = m.group(1).decode("ascii")
        props["request_uri"] = m.group(2).decode("latin-1")
    else:
        m = STATUS_LINE.match(head)
        if m is None:
            return None
        props["status"] = int(m.group(1))
        props["reason"] = m.group(2).decode("latin-1").strip()
    headers: dict[bytes, str] = {}
    for line in head[m.end() :].splitlines():
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        key = COMPACT.get(key, key)
        headers.setdefault(key, value.decode("latin-1").strip())
    if b"call-id" in headers:
        props["call_id"] = headers[b"call-id"]
    if b"from" in headers:
        props["from"] = _uri(headers[b"from"])
    if b"to" in headers:
        props["to"] = _uri(headers[b"to"])
    if b"cseq" in headers:
        props["cseq"] = headers[b"cseq"]
    agent = headers.get(b"user-agent") or headers.get(b"server")
    if agent:
        props["user_agent"] = agent
    props["_length"] = headers.get(b"content-length", "0")
    return props


def _head_end(buf: bytes) -> int:
    end = buf.find(b"\r\n\r\n")
    return end + 4 if end >= 0 else -1


class SipStream(Stream):
    __slots__ = ("bufs", "seen_message", "tcp")

    def __init__(self, tcp: bool) -> None:
        self.tcp = tcp
        self.bufs = [b"", b""]
        self.seen_message = False

    def feed(self, rev: bool, data: bytes) -> Update:
        if not self.tcp:
            end = _head_end(data)
            return self._message(data[:end] if end >= 0 else data)
        side = 1 if rev else 0
        buf = self.bufs[side] + data
        props: dict[str, Any] = {}
        while buf:
            if buf.startswith(b"\r\n"):  # RFC 5626 §3.5.1 CRLF keep-alives
                buf = buf[2:]
                continue
            end = _head_end(buf)
            if end < 0:
                break
            update, done = self._message(buf[:end])
            if done:
                return None, True
            body = _content_length(update)
            if len(buf) < end + body:
                break
            buf = buf[end + body :]
            if update:
                props.update(update)
        self.bufs[side] = buf[:MAX_MESSAGE]
        return props or None, False

    def _message(self, head: bytes) -> Update:
        if head.strip() == b"":
            return None, False  # keep-alive
        props = parse_head(head)
        if props is None:
            # Garbage before any SIP message: not SIP. After one: ignore the odd packet.
            return None, not self.seen_message
        self.seen_message = True
        if not self.tcp:
            props.pop("_length", None)
        return props, False


def _content_length(props: dict[str, Any] | None) -> int:
    if not props:
        return 0
    value = props.pop("_length", "0")
    if not (value.isascii() and value.isdigit() and len(value) <= 5):
        return 0
    return min(int(value), MAX_MESSAGE)


class SipAnalyzer(Analyzer):
    """`sip.*`: method, request_uri (requests), status, reason (responses), call_id, from,
    to (URIs), cseq, user_agent (User-Agent or Server)."""

    name = "sip"

    @staticmethod
    def recognises(props: dict[str, Any]) -> bool:
        """A request line or a status line."""
        return "method" in props or "status" in props

    limit = 16384

    def new_udp(self, info: FlowInfo) -> Stream:
        return SipStream(tcp=False)

    def new_tcp(self, info: FlowInfo) -> Stream:
        return SipStream(tcp=True)
