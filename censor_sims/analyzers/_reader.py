"""A bounds-checked cursor over bytes: every short read raises `Truncated`, nothing else.

Parsers written on top of it need only one `except Truncated` to stay total on garbage.
"""

from __future__ import annotations


class Truncated(ValueError):
    """The input ended (or a length field pointed) past the end of the buffer."""


class Reader:
    __slots__ = ("buf", "end", "pos")

    def __init__(self, buf: bytes, pos: int = 0, end: int | None = None) -> None:
        self.buf = buf
        self.pos = pos
        size = len(buf)
        self.end = size if end is None or end > size else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def _need(self, n: int) -> int:
        start = self.pos
        if n < 0 or start + n > self.end:
            raise Truncated(f"need {n} bytes at {start}, have {self.end - start}")
        self.pos = start + n
        return start

    def u8(self) -> int:
        return self.buf[self._need(1)]

    def u16(self) -> int:
        i = self._need(2)
        return (self.buf[i] << 8) | self.buf[i + 1]

    def u32(self) -> int:
        i = self._need(4)
        return int.from_bytes(self.buf[i : i + 4], "big")

    def take(self, n: int) -> bytes:
        i = self._need(n)
        return self.buf[i : i + n]

    def skip(self, n: int) -> None:
        self._need(n)

    def rest(self) -> bytes:
        data = self.buf[self.pos : self.end]
        self.pos = self.end
        return data

    def sub(self, n: int) -> Reader:
        """The next n bytes as a reader of their own (a length-prefixed vector's body)."""
        i = self._need(n)
        return Reader(self.buf, i, i + n)

    def vec8(self) -> Reader:
        return self.sub(self.u8())

    def vec16(self) -> Reader:
        return self.sub(self.u16())

    def varint(self) -> int:
        """A QUIC variable-length integer (RFC 9000 §16): 2-bit length prefix, 1-8 bytes."""
        first = self.buf[self._need(1)]
        n = 1 << (first >> 6)
        value = first & 0x3F
        if n > 1:
            i = self._need(n - 1)
            value = (value << (8 * (n - 1))) | int.from_bytes(self.buf[i : i + n - 1], "big")
        return value
