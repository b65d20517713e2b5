"""HTTP/1.x: request line and Host header from the client, status line from the server.

RFC 9112 §3 (request line), §4 (status line), RFC 9110 §7.2 (Host). The client's header
block is gathered across segments up to the empty line (or the byte limit); header names
match case-insensitively, the values are published as sent.
"""

from __future__ import annotations

import re
from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

METHODS = (b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"CONNECT", b"OPTIONS", b"TRACE", b"PATCH")
REQUEST_LINE = re.compile(rb"([A-Z]{3,7}) ([^ \r\n]+) (HTTP/\d(?:\.\d)?)\r?\n")
STATUS_LINE = re.compile(rb"(HTTP/\d(?:\.\d)?) (\d{3})(?: ([^\r\n]*))?\r?\n")
HOST = re.compile(rb"\r?\nhost[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)
USER_AGENT = re.compile(rb"\r?\nuser-agent[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


_INITIALS = frozenset(m[0] for m in METHODS)


def _may_be_request(buf: bytes) -> bool:
    """buf starts with a method name, or with the beginning of one (more bytes to come)."""
    if not buf:
        return True  # nothing to judge yet
    if buf[0] not in _INITIALS:
        return False
    return any(buf.startswith(m) or m.startswith(buf) for m in METHODS)


def _text(data: bytes) -> str:
    return data.decode("latin-1").strip()


class HttpStream(Stream):
    __slots__ = ("buf", "request_line", "side_done")

    def __init__(self) -> None:
        self.buf = b""
        self.request_line = False
        self.side_done = [False, False]

    def feed(self, rev: bool, data: bytes) -> Update:
        if rev:
            return self._response(data)
        if self.side_done[0]:
            return None, all(self.side_done)
        buf = self.buf + data
        if not self.request_line and not _may_be_request(buf):
            self.side_done = [True, True]  # not an HTTP request
            return None, True
        props: dict[str, Any] = {}
        if not self.request_line:
            m = REQUEST_LINE.match(buf)
            if m is None:
                if b"\n" in buf:
                    self.side_done = [True, True]
                    return None, True
                self.buf = buf
                return None, False
            self.request_line = True
            props.update(
                method=_text(m.group(1)), path=_text(m.group(2)), version=_text(m.group(3))
            )
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            end = buf.find(b"\n\n")
        if end >= 0:
            head = buf[: end + 2]
            host = HOST.search(head)
            agent = USER_AGENT.search(head)
            props["host"] = _text(host.group(1)) if host else None
            if agent:
                props["user_agent"] = _text(agent.group(1))
            self.side_done[0] = True
            self.buf = b""
        else:
            self.buf = buf
        return props or None, all(self.side_done)

    def _response(self, data: bytes) -> Update:
        if self.side_done[1]:
            return None, all(self.side_done)
        self.side_done[1] = True
        m = STATUS_LINE.match(data)
        if m is None:
            return None, all(self.side_done)
        props = {"status": int(m.group(2)), "response_version": _text(m.group(1))}
        if m.group(3) is not None:
            props["reason"] = _text(m.group(3))
        return props, all(self.side_done)


class HttpAnalyzer(Analyzer):
    """`http.*`: method, path, version, host (None when absent), user_agent; from the
    server: status (int), reason, response_version."""

    name = "http"

    @staticmethod
    def recognises(props: dict[str, Any]) -> bool:
        """A request line."""
        return "method" in props

    limit = 8192

    def new_tcp(self, info: FlowInfo) -> Stream:
        return HttpStream()
