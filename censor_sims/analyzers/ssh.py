"""SSH: the identification strings both sides send first (RFC 4253 §4.2).

`SSH-protoversion-softwareversion SP comments CR LF`. The server may send other lines
before its identification string; the client must not. Only the first 255 bytes of a line
count, as in the RFC.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

MAX_LINE = 255
MAX_PRELUDE_LINES = 16


def parse_banner(line: bytes) -> dict[str, Any] | None:
    """protocol, software, comments of an identification line (without CR LF)."""
    if not line.startswith(b"SSH-"):
        return None
    text = line[:MAX_LINE].decode("latin-1")
    _, _, rest = text.partition("-")
    protocol, sep, rest = rest.partition("-")
    if not sep or protocol not in ("2.0", "1.99", "1.5"):
        return None
    software, _, comments = rest.partition(" ")
    return {"protocol": protocol, "software": software, "comments": comments or None}


class SshStream(Stream):
    __slots__ = ("bufs", "done", "lines")

    def __init__(self) -> None:
        self.bufs = [b"", b""]
        self.done = [False, False]
        self.lines = [0, 0]

    def feed(self, rev: bool, data: bytes) -> Update:
        side = 1 if rev else 0
        if self.done[side]:
            return None, all(self.done)
        buf = self.bufs[side] + data
        if side == 0 and not b"SSH-".startswith(buf[:4]):
            self.done = [True, True]  # the client's first bytes must be its banner
            return None, True
        props: dict[str, Any] | None = None
        while not self.done[side]:
            end = buf.find(b"\n")
            if end < 0:
                if len(buf) > MAX_LINE + 2:
                    self.done[side] = True
                break
            line, buf = buf[:end].rstrip(b"\r"), buf[end + 1 :]
            banner = parse_banner(line)
            self.lines[side] += 1
            if banner is not None:
                self.done[side] = True
                if side == 0:
                    props = {"yes": True, **banner}
                else:
                    props = {f"server_{k}": v for k, v in banner.items()}
            elif side == 0 or self.lines[side] >= MAX_PRELUDE_LINES:
                self.done[side] = True
        self.bufs[side] = buf
        return props, all(self.done)


class SshAnalyzer(Analyzer):
    """`ssh.*`: yes, protocol ("2.0"), software (e.g. "OpenSSH_9.2p1"), comments; from the
    server: server_protocol, server_software, server_comments."""

    name = "ssh"
    limit = 4096

    def new_tcp(self, info: FlowInfo) -> Stream:
        return SshStream()
