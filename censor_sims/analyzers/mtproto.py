"""Telegram's obfuscated2 transport: a 64-byte random-looking preamble with known holes.

tdlib `td/mtproto/TcpTransport.cpp`, `ObfuscatedTransport::init`: the client draws 64 random
bytes and draws again while byte 0 is 0xef (abridged framing), the first little-endian
dword is "HEAD", "POST", "GET ", "OPTI", 0xdddddddd, 0xeeeeeeee or 0x02010316 (a TLS record
start), or the second dword is 0. Bytes 8-40 and 40-56 are then the AES-256-CTR key and IV
of the client's stream, and bytes 56-64 are sent encrypted with them: 56-60 hold the framing
tag (0xefefefef abridged, 0xeeeeeeee intermediate, 0xdddddddd padded intermediate), 60-62
the data-centre id. Anyone can run that decryption: when the tag comes out right (a direct
connection; an MTProxy secret mixes into the key and hides it) the flow is Telegram beyond
doubt. Otherwise `obfuscated2_candidate` only says the preamble is consistent with it.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

PREAMBLE = 64
FORBIDDEN_FIRST_DWORDS = frozenset(
    {0x44414548, 0x54534F50, 0x20544547, 0x4954504F, 0xDDDDDDDD, 0xEEEEEEEE, 0x02010316}
)
TAGS = {
    b"\xef\xef\xef\xef": "abridged",
    b"\xee\xee\xee\xee": "intermediate",
    b"\xdd\xdd\xdd\xdd": "padded_intermediate",
}
MIN_ENTROPY = 5.0  # bits/byte over 64 bytes; random data: mean 5.77, sd 0.08, 1e5 min 5.32


_C_LOG_C = [0.0] + [c * math.log2(c) for c in range(1, PREAMBLE + 1)]


def entropy(data: bytes) -> float:
    """Shannon entropy in bits per byte of a buffer of at most 64 bytes (so at most 6.0).

    H = log2(n) - sum(c log2 c) / n over the byte counts c; the c log2 c are tabulated.
    """
    n = len(data)
    if not 0 < n <= PREAMBLE:
        raise ValueError("entropy() takes 1 to 64 bytes")
    return math.log2(n) - sum(_C_LOG_C[c] for c in Counter(data).values()) / n


def preamble_allowed(head: bytes) -> bool:
    """tdlib would have sent these 64 bytes (none of the values it redraws on)."""
    first = int.from_bytes(head[0:4], "little")
    second = int.from_bytes(head[4:8], "little")
    return head[0] != 0xEF and first not in FORBIDDEN_FIRST_DWORDS and second != 0


def decrypt_tag(head: bytes) -> tuple[str, int] | None:
    """(framing, dc id) when the preamble decrypts to a valid framing tag (no proxy secret)."""
    decryptor = Cipher(algorithms.AES(head[8:40]), modes.CTR(head[40:56])).decryptor()
    plain = decryptor.update(head)
    framing = TAGS.get(plain[56:60])
    if framing is None:
        return None
    return framing, int.from_bytes(plain[60:62], "little", signed=True)


def tls_record(head: bytes) -> bool:
    """A TLS handshake record header (type 22, version 3.0-3.4). tdlib redraws only on
    16 03 01 02; a ClientHello of another length (Chrome's ~1.8 KB ones start 16 03 01 07)
    is as random-looking after its header and would pass as a candidate. Excluding every
    TLS record header costs a real preamble a ~5e-8 chance of being missed."""
    return len(head) >= 3 and head[0] == 0x16 and head[1] == 0x03 and head[2] <= 0x04


def evaluate(data: bytes) -> dict[str, Any]:
    head = data[:PREAMBLE]
    props: dict[str, Any] = {"length": len(data), "obfuscated2_candidate": False}
    if len(head) < PREAMBLE:
        return props
    if tls_record(head):
        props["tls_record"] = True
        return props
    props["entropy"] = h = entropy(head)
    if not preamble_allowed(head) or h < MIN_ENTROPY:
        return props
    props["obfuscated2_candidate"] = True
    tag = decrypt_tag(head)
    if tag is not None:
        props["obfuscated2"] = True
        props["framing"], props["dc_id"] = tag
    return props


class MtprotoStream(Stream):
    """Looks at the client's first payload only: tdlib writes the preamble in one piece."""

    __slots__ = ()

    def feed(self, rev: bool, data: bytes) -> Update:
        if rev:
            return None, False
        return evaluate(data), True


class MtprotoAnalyzer(Analyzer):
    """`mtproto.*`: obfuscated2_candidate (first client payload >= 64 bytes, high entropy,
    none of the values tdlib avoids), entropy, length; obfuscated2, framing, dc_id when the
    preamble decrypts to a valid framing tag."""

    name = "mtproto"

    @staticmethod
    def recognises(props: dict[str, Any]) -> bool:
        """An obfuscated2 preamble, or a candidate for one."""
        return bool(props.get("obfuscated2") or props.get("obfuscated2_candidate"))

    limit = 4096

    def new_tcp(self, info: FlowInfo) -> Stream:
        return MtprotoStream()
