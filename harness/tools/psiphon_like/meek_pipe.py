"""A byte pipe between a meek relay and the OSSH code: OSSH gets ordinary asyncio streams
(one end of a socketpair), and the relay, on the other end, takes whatever has accumulated
for the next HTTP body and writes what the bodies bring back."""

from __future__ import annotations

import asyncio
import contextlib
import socket

HIGH_WATER = 4 * 65536  # pause reading the OSSH side while this much waits to be sent


class PipeEnd(asyncio.Protocol):
    """The relay's end: a buffer of bytes the OSSH side wrote, and a way to answer it."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._ready = asyncio.Event()  # set while bytes wait or the other side is gone
        self._paused = False
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._ready.set()
        if len(self._buf) >= HIGH_WATER and self.transport is not None and not self._paused:
            self.transport.pause_reading()
            self._paused = True

    def eof_received(self) -> bool:
        self._gone()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone()

    def _gone(self) -> None:
        self.closed = True
        self._ready.set()

    @property
    def pending(self) -> int:
        return len(self._buf)

    async def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for bytes (or the end); True if something is there."""
        if not self._ready.is_set() and timeout > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ready.wait(), timeout)
        return self._ready.is_set()

    def take(self, limit: int) -> bytes:
        data = bytes(self._buf[:limit])
        del self._buf[:limit]
        if not self._buf and not self.closed:
            self._ready.clear()
        if self._paused and len(self._buf) < HIGH_WATER and self.transport is not None:
            self.transport.resume_reading()
            self._paused = False
        return data

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def open_pipe() -> tuple[PipeEnd, asyncio.StreamReader, asyncio.StreamWriter]:
    """(relay end, OSSH-side reader, OSSH-side writer)."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    _, end = await loop.connect_accepted_socket(PipeEnd, ours)
    reader, writer = await asyncio.open_connection(sock=theirs)
    return end, reader, writer
