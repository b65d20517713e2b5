"""OSSH, the obfuscated-SSH layer of Psiphon (psiphon/common/obfuscator/obfuscator.go and
obfuscatedSshConn.go; spec: brl/obfuscated-openssh README.obfuscation), as pure functions and
state machines with no I/O, so that the byte layout can be tested on its own.

Client seed message: [16-byte seed][magic 0x0BF5CA7E u32 BE][padding length u32 BE][padding],
everything after the seed RC4-encrypted. Each direction's RC4 key is the first 16 bytes of
d = SHA1(seed || keyword || iv), then d = SHA1(d) 6000 times, iv = "client_to_server" or
"server_to_client". Each direction stays obfuscated up to and including its first
SSH_MSG_NEWKEYS packet; after that SSH's own encryption carries it and bytes pass as they are.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

SEED_LENGTH = 16
KEY_LENGTH = 16
HASH_ITERATIONS = 6000
MAGIC = 0x0BF5CA7E
MAX_PADDING = 8192
# Psiphon's client pads with at least prng.SEED_LENGTH (32) bytes: the server reuses them as a
# PRNG seed. The server accepts 0..MAX_PADDING (older clients send less).
MIN_CLIENT_PADDING = 32
HEADER_LENGTH = SEED_LENGTH + 8
CLIENT_TO_SERVER = b"client_to_server"
SERVER_TO_CLIENT = b"server_to_client"

SSH_MSG_NEWKEYS = 21
SSH_MAX_PACKET_LENGTH = 256 * 1024  # OpenSSH's limit, as in obfuscatedSshConn.go
MAX_LINE_LENGTH = 1024  # identification (and padding) lines, obfuscatedSshConn.go
MAX_SERVER_LINE = 512  # padding lines before the server's version line, CRLF included


class ObfuscationError(ValueError):
    """The peer's bytes are not a valid OSSH stream."""


class Rejected(ObfuscationError):
    """The seed message failed validation: the server must not answer (probe resistance)."""


def derive_key(seed: bytes, keyword: bytes, iv: bytes) -> bytes:
    """Per-direction RC4 key (obfuscator.go deriveKey)."""
    digest = hashlib.sha1(seed + keyword + iv).digest()
    for _ in range(HASH_ITERATIONS):
        digest = hashlib.sha1(digest).digest()
    return digest[:KEY_LENGTH]


class Rc4:
    """One direction's keystream; its state runs on across the seed message and the stream."""

    def __init__(self, key: bytes) -> None:
        self._ctx = Cipher(ARC4(key), mode=None).encryptor()

    def apply(self, data: bytes) -> bytes:
        return self._ctx.update(data) if data else b""


class _Direction:
    """Tracks one direction's SSH plaintext (version and padding lines, then binary packets,
    RFC 4253 sec. 4.2 and 6) to find where its first SSH_MSG_NEWKEYS ends."""

    IDENT, HEADER, BODY, DONE = range(4)

    def __init__(self, cipher: Rc4) -> None:
        self.cipher = cipher
        self.state = self.IDENT
        self._line = bytearray()
        self._head = bytearray()
        self._remaining = 0
        self._payload_length = 0
        self._body_start = False
        self._newkeys = False

    @property
    def finished(self) -> bool:
        return self.state == self.DONE

    def _safe(self) -> int:
        """Bytes certainly still obfuscated from here on. A line may end on any byte, but a
        packet header (5 bytes) always follows the version line, so 6 is safe in IDENT."""
        if self.state == self.IDENT:
            return 6
        if self.state == self.HEADER:
            return 5 - len(self._head)
        if self.state == self.BODY:
            return self._remaining
        return 0

    def _feed(self, plain: bytes) -> None:
        i = 0
        while i < len(plain):
            if self.state == self.IDENT:
                self._line.append(plain[i])
                i += 1
                if self._line.endswith(b"\n"):
                    if self._line.startswith(b"SSH-"):
                        self.state = self.HEADER
                    self._line.clear()
                elif len(self._line) > MAX_LINE_LENGTH:
                    raise ObfuscationError("SSH identification line too long")
            elif self.state == self.HEADER:
                take = min(5 - len(self._head), len(plain) - i)
                self._head += plain[i : i + take]
                i += take
                if len(self._head) == 5:
                    self._start_body()
            elif self.state == self.BODY:
                take = min(self._remaining, len(plain) - i)
                if self._body_start:
                    self._newkeys = self._payload_length > 0 and plain[i] == SSH_MSG_NEWKEYS
                    self._body_start = False
                self._remaining -= take
                i += take
                if self._remaining == 0:
                    self._end_packet()
            else:
                raise AssertionError("fed bytes past the end of obfuscation")

    def _start_body(self) -> None:
        (packet_length,) = struct.unpack("!I", self._head[:4])
        if not 1 <= packet_length <= SSH_MAX_PACKET_LENGTH:
            raise ObfuscationError(f"invalid SSH packet length {packet_length}")
        self._payload_length = packet_length - self._head[4] - 1
        self._remaining = packet_length - 1
        self._head.clear()
        self._body_start = True
        self.state = self.BODY
        if self._remaining == 0:
            self._end_packet()

    def _end_packet(self) -> None:
        self.state = self.DONE if self._newkeys else self.HEADER
        self._body_start = False

    def transform(self, data: bytes, outgoing: bool) -> bytes:
        """Obfuscate (outgoing: parse the plaintext, then encrypt) or de-obfuscate (incoming:
        decrypt, then parse) as much of `data` as is still obfuscated; the rest passes."""
        out = bytearray()
        i = 0
        while i < len(data) and self.state != self.DONE:
            chunk = data[i : i + self._safe()]
            if outgoing:
                self._feed(chunk)
                out += self.cipher.apply(chunk)
            else:
                plain = self.cipher.apply(chunk)
                self._feed(plain)
                out += plain
            i += len(chunk)
        out += data[i:]
        return bytes(out)


class KexPadder:
    """Adds random padding to each outgoing plaintext KEX packet, up to 255 bytes in all, so
    that KEX packet sizes vary (obfuscatedSshConn.go extractSSHPackets). Only payloads enter
    SSH's exchange hash, so the peer's SSH accepts the change. Buffers to whole packets, and
    passes everything through once its SSH_MSG_NEWKEYS has gone."""

    def __init__(self, rand: Callable[[int], int] = secrets.randbelow) -> None:
        self._buf = bytearray()
        self._in_packets = False
        self.finished = False
        self._rand = rand

    def feed(self, data: bytes) -> bytes:
        if self.finished:
            return data
        self._buf += data
        out = bytearray()
        while not self._in_packets:
            end = self._buf.find(b"\n")
            if end < 0:
                return bytes(out)
            line = bytes(self._buf[: end + 1])
            del self._buf[: end + 1]
            out += line
            self._in_packets = line.startswith(b"SSH-")
        while len(self._buf) >= 5:
            packet_length, padding = struct.unpack_from("!IB", self._buf)
            if not 1 <= packet_length <= SSH_MAX_PACKET_LENGTH:
                raise ObfuscationError(f"invalid SSH packet length {packet_length}")
            if len(self._buf) < 4 + packet_length:
                break
            body = bytes(self._buf[5 : 4 + packet_length])
            del self._buf[: 4 + packet_length]
            extra = self._rand(255 - padding + 1) if padding < 255 else 0
            out += struct.pack("!IB", packet_length + extra, padding + extra) + body
            out += os.urandom(extra)
            if packet_length - padding - 1 > 0 and body[0] == SSH_MSG_NEWKEYS:
                self.finished = True
                out += self._buf
                self._buf.clear()
                break
        return bytes(out)


@dataclass
class Session:
    """Both directions of one OSSH connection, seen from one side."""

    is_client: bool
    c2s: _Direction
    s2c: _Direction
    padder: KexPadder | None = None

    @classmethod
    def from_seed(
        cls, seed: bytes, keyword: bytes, is_client: bool, pad_kex: bool = False
    ) -> Session:
        return cls(
            is_client,
            _Direction(Rc4(derive_key(seed, keyword, CLIENT_TO_SERVER))),
            _Direction(Rc4(derive_key(seed, keyword, SERVER_TO_CLIENT))),
            KexPadder() if pad_kex else None,
        )

    def outgoing(self, data: bytes) -> bytes:
        if self.padder is not None:
            data = self.padder.feed(data)
        return (self.c2s if self.is_client else self.s2c).transform(data, outgoing=True)

    def incoming(self, data: bytes) -> bytes:
        return (self.s2c if self.is_client else self.c2s).transform(data, outgoing=False)


def client_preamble(
    keyword: bytes,
    seed: bytes | None = None,
    padding: bytes | None = None,
    pad_kex: bool = False,
) -> tuple[bytes, Session]:
    """The client's seed message and its session (obfuscator.go makeClientPreamble)."""
    seed = os.urandom(SEED_LENGTH) if seed is None else seed
    if padding is None:
        padding = os.urandom(MIN_CLIENT_PADDING + secrets.randbelow(MAX_PADDING - 31))
    if len(seed) != SEED_LENGTH or len(padding) > MAX_PADDING:
        raise ValueError("seed must be 16 bytes and padding at most 8192")
    session = Session.from_seed(seed, keyword, is_client=True, pad_kex=pad_kex)
    body = struct.pack("!II", MAGIC, len(padding)) + padding
    return seed + session.c2s.cipher.apply(body), session


@dataclass
class SeedHistory:
    """Seeds seen recently, from any client: a repeated seed is a replayed handshake (a
    censor probing a suspected server), as psiphon/common/obfuscator/history.go SeedHistory
    in strict mode. The censor replays from its own address, so the history is global and
    remembers who sent each seed: Psiphon lets a duplicate from the SAME client IP through
    within a short window (meek retries re-send it); our meek retries at the HTTP layer
    (numbered requests, cached answers), so here every duplicate within `ttl` is a replay,
    and `ip` is kept only to say in the log whether the replay came from elsewhere."""

    ttl: float = 600.0
    capacity: int = 65536
    clock: Callable[[], float] = time.monotonic
    _seen: dict[bytes, tuple[float, str]] = field(default_factory=dict)

    def add_new(self, client_ip: str, seed: bytes) -> bool:
        """Record `seed`; False if any client sent it within `ttl`."""
        now = self.clock()
        for old in [s for s, (t, _) in self._seen.items() if now - t > self.ttl]:
            del self._seen[old]
        if seed in self._seen:
            return False
        if len(self._seen) >= self.capacity:
            del self._seen[next(iter(self._seen))]
        self._seen[seed] = (now, client_ip)
        return True

    def first_sender(self, seed: bytes) -> str | None:
        entry = self._seen.get(seed)
        return entry[1] if entry else None


def server_accept(
    header: bytes,
    keyword: bytes,
    client_ip: str,
    history: SeedHistory | None,
    pad_kex: bool = False,
) -> tuple[Session, int]:
    """Validate the first 24 bytes; returns the server's session and the padding length still
    to read (to pass through `session.incoming` and discard). Checks the magic before acting
    on the length, and records the seed only once the magic is valid (readPreamble)."""
    if len(header) != HEADER_LENGTH:
        raise Rejected("short seed message")
    seed = header[:SEED_LENGTH]
    session = Session.from_seed(seed, keyword, is_client=False, pad_kex=pad_kex)
    magic, padding_length = struct.unpack("!II", session.c2s.cipher.apply(header[SEED_LENGTH:]))
    if magic != MAGIC:
        raise Rejected("invalid magic value (wrong keyword or not OSSH)")
    if history is not None and not history.add_new(client_ip, seed):
        first = history.first_sender(seed)
        where = "same client" if first == client_ip else f"first sent by {first}"
        raise Rejected(f"duplicate obfuscation seed (replay; {where})")
    if padding_length > MAX_PADDING:
        raise Rejected("invalid padding length")
    return session, padding_length


def server_padding_lines(length: int | None = None) -> bytes:
    """Lines the server sends before its version line to vary its size, 2..8192 bytes in
    lines of at most 512 (RFC 4253 sec. 4.2 allows them; obfuscatedSshConn.go
    makeServerIdentificationLinePadding). The client's SSH ignores them."""
    if length is None:
        length = 2 + secrets.randbelow(MAX_PADDING - 1)
    lines = []
    while length > 0:
        n = min(length, MAX_SERVER_LINE)
        if 0 < length - n < 2:
            n -= 2 - (length - n)
        lines.append(b"\x00" * (n - 2) + b"\r\n")
        length -= n
    return b"".join(lines)
