"""baresip's ctrl_tcp: JSON objects framed as netstrings (`<len>:<json>,`) both ways.

Commands are {"command", "params", "token"}; baresip answers {"response": true, "ok",
"data", "token"} and pushes {"event": true, "type", ...} for UA events. One connection
carries both: a second connection would take the event stream over.
"""

from __future__ import annotations

import json
import socket
import time
from typing import Any


class CtrlError(RuntimeError):
    """The ctrl_tcp connection failed or a command was refused."""


def encode(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj).encode()
    return str(len(body)).encode() + b":" + body + b","


class NetstringReader:
    """Splits a byte stream into netstrings; fed with whatever recv() returned."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while True:
            head, colon, rest = self._buf.partition(b":")
            if (head and not head.isdigit()) or len(head) > 9 or (colon and not head):
                raise CtrlError(f"not a netstring: {self._buf[:40]!r}")
            if not colon:
                break
            size = int(head)
            if len(rest) < size + 1:
                break
            if rest[size : size + 1] != b",":
                raise CtrlError(f"netstring without its trailing comma: {self._buf[:40]!r}")
            out.append(rest[:size])
            self._buf = rest[size + 1 :]
        return out


class CtrlClient:
    """One ctrl_tcp connection: send commands, take responses and events in order."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = NetstringReader()
        self.pending: list[dict[str, Any]] = []
        self._token = 0

    @classmethod
    def connect(cls, port: int, timeout: float, alive: Any = None) -> CtrlClient:
        """Connect to 127.0.0.1:port, retrying until baresip listens (`alive()` false:
        give up at once, the program exited)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return cls(socket.create_connection(("127.0.0.1", port), timeout=1.0))
            except OSError as exc:
                if time.monotonic() >= deadline or (alive is not None and not alive()):
                    raise CtrlError(f"ctrl_tcp 127.0.0.1:{port}: {exc}") from None
                time.sleep(0.02)

    def send(self, command: str, params: str = "") -> str:
        self._token += 1
        token = str(self._token)
        self.sock.sendall(encode({"command": command, "params": params, "token": token}))
        return token

    def next_message(self, timeout: float) -> dict[str, Any] | None:
        """The next response or event, or None when nothing came within `timeout`."""
        deadline = time.monotonic() + timeout
        while not self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not data:
                raise CtrlError("ctrl_tcp connection closed by baresip")
            for raw in self.reader.feed(data):
                msg = json.loads(raw)
                if isinstance(msg, dict):
                    self.pending.append(msg)
        return self.pending.pop(0)

    def close(self) -> None:
        self.sock.close()
