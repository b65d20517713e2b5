"""The HTTP/1.1 that meek and its front need (RFC 9112): keep-alive messages whose bodies
have a Content-Length. Chunked bodies are refused (411), which no peer here sends."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_HEAD = 16384
MAX_BODY = 1 << 20
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 409: "Conflict",
           411: "Length Required", 421: "Misdirected Request", 502: "Bad Gateway"}  # fmt: skip


class HttpError(Exception):
    """A message we cannot parse; `status` is what a server answers with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass
class Message:
    start: str  # request line or status line
    headers: list[tuple[str, str]]
    body: bytes = b""

    def get(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return "; ".join(values) if values else None

    @property
    def status(self) -> int:
        parts = self.start.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            raise HttpError(502, f"bad status line {self.start!r}")
        return int(parts[1])

    def encode(self) -> bytes:
        return _encode(self.start, self.headers, self.body)


def _encode(start: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    kept = [(k, v) for k, v in headers if k.lower() not in ("content-length", "transfer-encoding")]
    lines = [start, *(f"{k}: {v}" for k, v in kept), f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode("latin-1") + body


def request(method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    return _encode(f"{method} {target} HTTP/1.1", headers, body)


def response(status: int, headers: list[tuple[str, str]], body: bytes) -> bytes:
    return _encode(f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}", headers, body)


async def read_message(reader: asyncio.StreamReader, max_body: int = MAX_BODY) -> Message | None:
    """The next message, or None if the peer closed cleanly before sending one."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            return None
        raise HttpError(400, "connection closed inside a message head") from None
    except asyncio.LimitOverrunError:
        raise HttpError(400, "message head too long") from None
    if len(head) > MAX_HEAD:
        raise HttpError(400, "message head too long")
    start, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise HttpError(400, f"malformed header line {line!r}")
        headers.append((name, value.strip()))
    msg = Message(start, headers)
    if msg.get("transfer-encoding"):
        raise HttpError(411, "chunked bodies are not supported")
    length = msg.get("content-length") or "0"
    if not length.isdigit() or int(length) > max_body:
        raise HttpError(400, f"bad Content-Length {length!r}")
    msg.body = await reader.readexactly(int(length))
    return msg
