"""QUIC v1 Initial packets, opened as any on-path observer can (RFC 9001 §5).

Initial packets are encrypted with keys derived from the client's Destination Connection
ID, which travels in clear, so a censor can read the ClientHello (RFC 9001 §5.2 calls this
out: Initial protection gives no confidentiality against on-path attackers). Steps:
HKDF-Extract(salt, DCID) -> "client in" secret -> "quic key"/"quic iv"/"quic hp" (§5.1),
remove header protection with an AES-ECB mask over a ciphertext sample (§5.4), then
AES-128-GCM with nonce = iv XOR packet number (§5.3).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from censor_sims.analyzers._reader import Reader, Truncated

VERSION_1 = 0x00000001
INITIAL_SALT_V1 = bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")  # RFC 9001 §5.2
MAX_CID = 20  # RFC 9000 §17.2: connection IDs are at most 20 bytes in v1

# Long packet types, v1 (RFC 9000 §17.2, Table 5).
INITIAL, ZERO_RTT, HANDSHAKE, RETRY = 0, 1, 2, 3


def hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1) with an empty context, one SHA-256 block."""
    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return hmac.digest(secret, info + b"\x01", "sha256")[:length]


@dataclass(frozen=True, slots=True)
class InitialKeys:
    aead: AESGCM
    iv: bytes
    hp: Any  # an AES-ECB encryptor context, reused for every mask

    @classmethod
    def client(cls, dcid: bytes) -> InitialKeys:
        initial_secret = hmac.digest(INITIAL_SALT_V1, dcid, "sha256")  # HKDF-Extract
        secret = hkdf_expand_label(initial_secret, b"client in", 32)
        key = hkdf_expand_label(secret, b"quic key", 16)
        iv = hkdf_expand_label(secret, b"quic iv", 12)
        hp = hkdf_expand_label(secret, b"quic hp", 16)
        return cls(AESGCM(key), iv, Cipher(algorithms.AES(hp), modes.ECB()).encryptor())


@dataclass(slots=True)
class LongHeader:
    """A long-header packet's clear fields; `pn_offset`/`end` locate the protected part."""

    first: int
    version: int
    dcid: bytes
    scid: bytes
    packet_type: int
    start: int
    pn_offset: int
    end: int


def long_headers(data: bytes) -> list[LongHeader]:
    """The long-header packets coalesced in one datagram (RFC 9000 §12.2), in order.

    Stops at a short-header packet, a version other than v1 (its layout after the
    connection IDs is unknown), a Retry (no Length field), or anything cut short.
    """
    out: list[LongHeader] = []
    pos = 0
    while pos < len(data):
        r = Reader(data, pos)
        try:
            first = r.u8()
            if not first & 0x80:
                break
            version = r.u32()
            dcid = r.take(r.u8())
            scid = r.take(r.u8())
            packet_type = (first >> 4) & 0x03
            header = LongHeader(first, version, dcid, scid, packet_type, pos, 0, 0)
            if version != VERSION_1 or packet_type == RETRY:
                out.append(header)
                break
            if len(dcid) > MAX_CID or len(scid) > MAX_CID:
                break
            if packet_type == INITIAL:
                r.skip(r.varint())  # token
            length = r.varint()
            header.pn_offset = r.pos
            header.end = r.pos + length
            if header.end > len(data) or length < 20:  # pn + 16-byte tag at least
                break
        except Truncated:
            break
        out.append(header)
        pos = header.end
    return out


def decode_packet_number(largest: int, truncated: int, bits: int) -> int:
    """RFC 9000 Appendix A.3: the full packet number closest to largest + 1."""
    expected = largest + 1
    window = 1 << bits
    half = window // 2
    candidate = (expected & ~(window - 1)) | truncated
    if candidate <= expected - half and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half and candidate >= window:
        return candidate - window
    return candidate


def open_initial(data: bytes, header: LongHeader, keys: InitialKeys, largest: int) -> tuple:
    """(plaintext payload, packet number); raises InvalidTag (or Truncated) if it won't open."""
    pn_offset = header.pn_offset
    sample = data[pn_offset + 4 : pn_offset + 20]
    if len(sample) < 16:
        raise Truncated("no room for the header-protection sample")
    mask = keys.hp.update(sample)
    first = header.first ^ (mask[0] & 0x0F)
    pn_len = (first & 0x03) + 1
    pn_bytes = bytes(
        b ^ m for b, m in zip(data[pn_offset : pn_offset + pn_len], mask[1:], strict=False)
    )
    packet_number = decode_packet_number(largest, int.from_bytes(pn_bytes, "big"), 8 * pn_len)
    aad = bytes([first]) + data[header.start + 1 : pn_offset] + pn_bytes
    nonce = (int.from_bytes(keys.iv, "big") ^ packet_number).to_bytes(12, "big")
    payload = keys.aead.decrypt(nonce, data[pn_offset + pn_len : header.end], aad)
    return payload, packet_number


# Frame types allowed in Initial packets (RFC 9000 §12.4, Table 3).
PADDING, PING, ACK, ACK_ECN, CRYPTO, CONNECTION_CLOSE = 0x00, 0x01, 0x02, 0x03, 0x06, 0x1C


def crypto_frames(payload: bytes) -> list[tuple[int, bytes]]:
    """(offset, data) of the CRYPTO frames in a decrypted Initial payload (RFC 9000 §19).

    PADDING, PING and ACK frames are skipped; parsing stops at CONNECTION_CLOSE, at a frame
    type not allowed in Initials, or at a frame cut short (keeping the frames before it).
    """
    frames: list[tuple[int, bytes]] = []
    r = Reader(payload)
    try:
        while r.remaining:
            frame_type = r.varint()
            if frame_type == PADDING:
                rest = payload[r.pos :]
                r.skip(len(rest) - len(rest.lstrip(b"\x00")))
            elif frame_type == PING:
                continue
            elif frame_type in (ACK, ACK_ECN):
                r.varint()  # largest acknowledged
                r.varint()  # ack delay
                ranges = r.varint()
                r.varint()  # first ack range
                if ranges > r.remaining:
                    break
                for _ in range(2 * ranges):  # gap, range length
                    r.varint()
                if frame_type == ACK_ECN:
                    r.varint(), r.varint(), r.varint()  # ECT0, ECT1, ECN-CE counts
            elif frame_type == CRYPTO:
                offset = r.varint()
                frames.append((offset, r.take(r.varint())))
            else:
                break  # CONNECTION_CLOSE or a frame an Initial must not carry
    except Truncated:
        pass
    return frames


class CryptoAssembler:
    """CRYPTO stream bytes from frames that may arrive out of order, overlap or repeat."""

    __slots__ = ("chunks", "max_bytes", "stored")

    def __init__(self, max_bytes: int = 65536) -> None:
        self.chunks: dict[int, bytes] = {}
        self.max_bytes = max_bytes
        self.stored = 0

    def add(self, offset: int, data: bytes) -> None:
        if not data or offset + len(data) > self.max_bytes:
            return
        old = self.chunks.get(offset, b"")
        if len(data) > len(old):
            self.chunks[offset] = data
            self.stored += len(data) - len(old)

    def contiguous(self) -> bytes:
        """The stream from offset 0 up to the first gap."""
        out = bytearray()
        for offset in sorted(self.chunks):
            if offset > len(out):
                break
            data = self.chunks[offset]
            if offset + len(data) > len(out):
                out += data[len(out) - offset :]
        return bytes(out)
