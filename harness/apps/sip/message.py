"""SIP message syntax (RFC 3261 sections 7, 8.2.6, 18.3, 20): parse, build, frame a stream.

Headers are kept as an ordered list of (name, value) lines exactly as received, so that a
response copies every Via line unchanged (a proxy's Via may carry comma-joined values).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field

SIP_VERSION = "SIP/2.0"
BRANCH_MAGIC = "z9hG4bK"  # RFC 3261 8.1.1.7: marks a branch as globally unique
MAX_HEAD = 65536  # bytes of start line + headers we accept before declaring garbage

# RFC 3261 7.3.3 compact forms -> canonical lower-case names.
COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
}

REASONS = {
    100: "Trying",
    180: "Ringing",
    183: "Session Progress",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    501: "Not Implemented",
    503: "Service Unavailable",
    603: "Decline",
}


class SipParseError(ValueError):
    """Bytes that are not a SIP message we can use."""


def canonical(name: str) -> str:
    """Header name for comparisons: lower case, compact form expanded."""
    low = name.strip().lower()
    return COMPACT.get(low, low)


@dataclass
class SipMessage:
    """A request (method, uri) or a response (status, reason) with ordered header lines."""

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return self.method is not None

    def get(self, name: str) -> str | None:
        """Value of the first header line called `name` (compact forms match)."""
        key = canonical(name)
        return next((v for n, v in self.headers if canonical(n) == key), None)

    def get_all(self, name: str) -> list[str]:
        key = canonical(name)
        return [v for n, v in self.headers if canonical(n) == key]

    def add(self, name: str, value: str) -> None:
        self.headers.append((name, value))

    def set(self, name: str, value: str) -> None:
        """Replace every line called `name` by one line (appended if absent)."""
        key = canonical(name)
        at = next((i for i, (n, _) in enumerate(self.headers) if canonical(n) == key), None)
        self.headers = [(n, v) for n, v in self.headers if canonical(n) != key]
        self.headers.insert(len(self.headers) if at is None else at, (name, value))

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        """(number, method) of the CSeq header; (0, "") when absent or malformed."""
        parts = (self.get("cseq") or "").split()
        if len(parts) != 2 or not parts[0].isdigit():
            return 0, ""
        return int(parts[0]), parts[1].upper()

    def top_via(self) -> Via:
        first = self.get("via")
        if first is None:
            raise SipParseError("no Via header")
        return parse_via(split_values(first)[0])

    def encode(self) -> bytes:
        """Wire form; Content-Length is always written (mandatory on streams, RFC 18.3)."""
        if self.is_request:
            start = f"{self.method} {self.uri} {SIP_VERSION}"
        else:
            start = f"{SIP_VERSION} {self.status} {self.reason}"
        lines = [start]
        lines += [f"{n}: {v}" for n, v in self.headers if canonical(n) != "content-length"]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body

    def summary(self) -> str:
        """Start line, for logs."""
        if self.is_request:
            return f"{self.method} {self.uri}"
        return f"{self.status} {self.reason}"


def _split_head(data: bytes) -> tuple[bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        at = data.find(sep)
        if at >= 0:
            return data[:at], data[at + len(sep) :]
    return data, b""


def parse(data: bytes) -> SipMessage:
    """Parse one message; the body is cut to Content-Length when the header is present."""
    head, rest = _split_head(data.lstrip(b"\r\n"))
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SipParseError(f"head is not UTF-8: {exc}") from None
    raw_lines = re.split(r"\r?\n", text)
    if not raw_lines or not raw_lines[0]:
        raise SipParseError("empty message")
    lines: list[str] = []
    for line in raw_lines[1:]:
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += " " + line.strip()  # header folding (RFC 3261 7.3.1)
        elif line:
            lines.append(line)
    msg = _start_line(raw_lines[0])
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not name.strip():
            raise SipParseError(f"bad header line {line!r}")
        msg.headers.append((name.strip(), value.strip()))
    length = msg.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise SipParseError(f"bad Content-Length {length!r}")
        if int(length) > len(rest):
            raise SipParseError(f"body shorter than Content-Length {length}")
        rest = rest[: int(length)]
    msg.body = rest
    return msg


def _start_line(line: str) -> SipMessage:
    parts = line.split(" ", 2)
    if parts[0] == SIP_VERSION:
        if len(parts) < 2 or not parts[1].isdigit() or len(parts[1]) != 3:
            raise SipParseError(f"bad status line {line!r}")
        return SipMessage(status=int(parts[1]), reason=parts[2] if len(parts) > 2 else "")
    if len(parts) != 3 or parts[2] != SIP_VERSION or not parts[0].isalpha():
        raise SipParseError(f"bad request line {line!r}")
    return SipMessage(method=parts[0].upper(), uri=parts[1])


class StreamFramer:
    """Cut a byte stream (TCP) into messages by Content-Length; CRLF keep-alives are
    skipped (RFC 5626 4.4.1). Raises SipParseError when the stream cannot be framed."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while True:
            while self._buf[:2] == b"\r\n":
                del self._buf[:2]
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    raise SipParseError("no end of headers within 64 KiB")
                return out
            head = bytes(self._buf[:end]).decode("utf-8", "replace")
            match = re.search(r"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", head, re.I | re.M)
            if match is None:
                raise SipParseError("message on a stream without Content-Length")
            total = end + 4 + int(match.group(1))
            if len(self._buf) < total:
                return out
            out.append(bytes(self._buf[:total]))
            del self._buf[:total]


def split_values(value: str) -> list[str]:
    """Split a comma-separated header value, ignoring commas in quotes and <...>."""
    parts, current, quoted, angle = [], [], False, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        if ch == "," and not quoted and not angle:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def parse_params(text: str) -> dict[str, str | None]:
    """`;a=b;c` -> {"a": "b", "c": None}; names lower-cased."""
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        if item.strip():
            name, eq, val = item.partition("=")
            params[name.strip().lower()] = val.strip() if eq else None
    return params


@dataclass(frozen=True)
class Via:
    transport: str
    host: str
    port: int | None
    params: dict[str, str | None]

    @property
    def branch(self) -> str:
        return self.params.get("branch") or ""


def parse_via(value: str) -> Via:
    """One Via value: `SIP/2.0/UDP host:port;rport;branch=z9hG4bK...`."""
    match = re.match(r"\s*SIP\s*/\s*2\.0\s*/\s*(\w+)\s+([^;\s]+)\s*(.*)$", value, re.I)
    if match is None:
        raise SipParseError(f"bad Via {value!r}")
    transport, sent_by, rest = match.groups()
    host, port = split_hostport(sent_by)
    return Via(transport.upper(), host, port, parse_params(rest))


def split_hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        host, _, tail = text[1:].partition("]")
        return host, int(tail[1:]) if tail.startswith(":") else None
    host, colon, port = text.partition(":")
    return host, int(port) if colon and port.isdigit() else None


def uri_of(name_addr: str) -> str:
    """The URI of a From/To/Contact value (inside <...> when present)."""
    match = re.search(r"<([^>]*)>", name_addr)
    if match:
        return match.group(1).strip()
    return name_addr.split(";", 1)[0].strip()


def tag_of(name_addr: str) -> str | None:
    """The `tag` parameter of a From/To value (header parameters follow the `>`)."""
    tail = name_addr.rsplit(">", 1)[1] if ">" in name_addr else name_addr.partition(";")[2]
    return parse_params(tail).get("tag")


def with_tag(name_addr: str, tag: str) -> str:
    return name_addr if tag_of(name_addr) else f"{name_addr};tag={tag}"


@dataclass(frozen=True)
class SipUri:
    user: str | None
    host: str
    port: int | None
    params: dict[str, str | None]


def parse_uri(uri: str) -> SipUri:
    """`sip:user@host:port;params` (headers after `?` are ignored)."""
    match = re.match(r"sips?:(?:([^@]*)@)?([^;?]+)([^?]*)", uri.strip(), re.I)
    if match is None:
        raise SipParseError(f"not a SIP URI: {uri!r}")
    user, hostport, params = match.groups()
    host, port = split_hostport(hostport)
    return SipUri(user, host, port, parse_params(params))


def new_branch() -> str:
    return BRANCH_MAGIC + secrets.token_hex(8)


def new_tag() -> str:
    return secrets.token_hex(6)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(10)}@{host}"


def request(method: str, uri: str, headers: list[tuple[str, str]], body: bytes = b"") -> SipMessage:
    return SipMessage(method=method, uri=uri, headers=list(headers), body=body)


def response(
    req: SipMessage,
    status: int,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    reason: str | None = None,
) -> SipMessage:
    """A response to `req` (RFC 3261 8.2.6.2): Via lines, From, Call-ID, CSeq copied; To
    gets `to_tag` unless it has a tag already."""
    out = SipMessage(status=status, reason=reason or REASONS.get(status, "Unknown"), body=body)
    for name, value in req.headers:
        key = canonical(name)
        if key in ("via", "from", "call-id", "cseq"):
            out.add(name, value)
        elif key == "to":
            out.add(name, with_tag(value, to_tag) if to_tag else value)
    out.headers += headers or []
    return out
