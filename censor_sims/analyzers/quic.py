"""QUIC v1: decrypt the client's Initial packets and read the ClientHello inside (SNI, ALPN).

The ClientHello can be spread over several CRYPTO frames, out of order, across several
Initial packets and datagrams (Chrome scrambles them on purpose; post-quantum key shares
make the hello outgrow one datagram), so the stream gathers CRYPTO data until the whole
handshake message is there. Client direction only, as OpenGFW and the GFW (USENIX Security
2025) do. `initial_datagram` says in which client datagram the first Initial came: the GFW
only looks at the first one, so a dummy datagram ahead of it slips by.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidTag

from censor_sims.analyzers._hello import parse_client_hello
from censor_sims.analyzers._quic_initial import (
    INITIAL,
    VERSION_1,
    CryptoAssembler,
    InitialKeys,
    LongHeader,
    crypto_frames,
    long_headers,
    open_initial,
)
from censor_sims.analyzers._reader import Truncated
from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

CLIENT_HELLO = 1
MAX_HELLO = 32768
GIVE_UP_AFTER = 4  # client datagrams that are not (readable) Initials


VERSION_2 = 0x6B3343CF  # RFC 9369


def _known_other_version(header: LongHeader) -> bool:
    """A QUIC version we recognise but do not decrypt: v2, IETF drafts, Google's Q0xx."""
    v = header.version
    return bool(header.first & 0x40) and (
        v == VERSION_2 or (v >> 8) == 0xFF0000 or (v >> 24) == 0x51  # drafts, "Q0.."
    )


class QuicStream(Stream):
    __slots__ = ("crypto", "datagrams", "first_keys", "invalid", "largest", "seen_initial")

    def __init__(self) -> None:
        self.crypto = CryptoAssembler(MAX_HELLO + 4)
        self.first_keys: tuple[bytes, InitialKeys] | None = None
        self.largest = -1
        self.invalid = 0
        self.datagrams = 0
        self.seen_initial = False

    def feed(self, rev: bool, data: bytes) -> Update:
        if rev:
            return None, False
        index = self.datagrams
        self.datagrams += 1
        props: dict[str, Any] = {}
        opened = False
        for header in long_headers(data):
            if header.version != VERSION_1:
                if not self.seen_initial and _known_other_version(header):
                    props["version"] = header.version  # QUIC, but not a version we open
                continue
            if header.packet_type != INITIAL:
                continue
            payload = self._open(data, header)
            if payload is None:
                continue
            opened = True
            if not self.seen_initial:
                self.seen_initial = True
                props.update(
                    version=VERSION_1,
                    initial=True,
                    initial_datagram=index,
                    dcid=header.dcid.hex(),
                    scid=header.scid.hex(),
                )
            for offset, chunk in crypto_frames(payload):
                self.crypto.add(offset, chunk)
        if not opened:
            self.invalid += 1
            return props or None, self.invalid >= GIVE_UP_AFTER
        hello = self._client_hello()
        if hello is None:
            return props or None, False
        props.update(hello)
        return props, True

    def _open(self, data: bytes, header: LongHeader) -> bytes | None:
        """Decrypt with the keys of the client's first DCID (RFC 9001 §5.2: they stay for
        every Initial), else with keys of this packet's DCID (derived only then: after a
        Retry the client switches to keys from the new DCID)."""
        first = self.first_keys
        if first is not None:
            payload = self._try(data, header, first[1])
            if payload is not None or first[0] == header.dcid:
                return payload
        keys = InitialKeys.client(header.dcid)
        payload = self._try(data, header, keys)
        if payload is not None and first is None:
            self.first_keys = (header.dcid, keys)
        return payload

    def _try(self, data: bytes, header: LongHeader, keys: InitialKeys) -> bytes | None:
        try:
            payload, packet_number = open_initial(data, header, keys, self.largest)
        except (InvalidTag, Truncated, ValueError):
            return None
        self.largest = max(self.largest, packet_number)
        return payload

    def _client_hello(self) -> dict[str, Any] | None:
        stream = self.crypto.contiguous()
        if len(stream) < 4:
            return None
        length = int.from_bytes(stream[1:4], "big")
        if stream[0] != CLIENT_HELLO or length > MAX_HELLO:
            return {"handshake_type": stream[0]}
        if len(stream) < 4 + length:
            return None
        hello = parse_client_hello(stream[4 : 4 + length])
        if hello is None:
            return {"handshake_type": CLIENT_HELLO, "malformed": True}
        hello["tls_version"] = hello.pop("version")
        hello["handshake_type"] = CLIENT_HELLO
        return hello


class QuicAnalyzer(Analyzer):
    """`quic.*`: version (int: 1, or another known QUIC version), initial, initial_datagram,
    dcid, scid, handshake_type, handshake, sni, alpn, supported_versions, tls_version,
    client_version, ech, quic_transport_parameters, extensions, malformed."""

    name = "quic"

    @staticmethod
    def recognises(props: dict[str, Any]) -> bool:
        """An Initial packet."""
        return bool(props.get("initial"))

    limit = 65536

    def new_udp(self, info: FlowInfo) -> Stream:
        return QuicStream()
