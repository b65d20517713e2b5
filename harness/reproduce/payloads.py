"""First payloads the cases send: real protocol openings (DNS query, HTTP request, TLS
ClientHello from Python's ssl) and payloads built to sit on one side or the other of each
fully-encrypted-traffic exemption (Wu et al., USENIX Security 2023, Algorithm 1).

The FET payloads are drawn at random and kept only when the analyzer's own `evaluate`
agrees that exactly the intended rule holds (or none does), so a row tests one rule."""

from __future__ import annotations

import contextlib
import os
import random
import ssl
import struct
from collections.abc import Callable

from censor_sims.analyzers.fet import evaluate

PRINTABLE = bytes(range(0x20, 0x7F))
HIGH = bytes(b for b in range(256) if not 0x20 <= b <= 0x7E)  # non-printable bytes


def dns_query_tcp(name: str = "example.test", qid: int = 0x1234) -> bytes:
    """A DNS A query with the two-byte length prefix of DNS over TCP."""
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    msg = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", 1, 1)
    return struct.pack("!H", len(msg)) + msg


def http_get(host: str = "example.test", path: str = "/") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: gatecrash\r\n\r\n".encode()


def client_hello(sni: str) -> bytes:
    """The ClientHello Python's ssl (OpenSSL) sends for `sni`, as bytes on the wire."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def sip_options(transport: str = "UDP", port: int = 5060) -> bytes:
    """A SIP OPTIONS request (RFC 3261), as a softphone pings its registrar."""
    return (
        f"OPTIONS sip:voip.gatecrash.test:{port} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} 10.0.0.10:5062;branch=z9hG4bK{os.urandom(4).hex()}\r\n"
        "Max-Forwards: 70\r\nFrom: <sip:alice@gatecrash.test>;tag=1928301774\r\n"
        "To: <sip:voip.gatecrash.test>\r\nCall-ID: a84b4c76e66710@gatecrash.test\r\n"
        "CSeq: 63104 OPTIONS\r\nContact: <sip:alice@10.0.0.10:5062>\r\n"
        "Accept: application/sdp\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def rtp_packets(count: int = 15, ssrc: int = 0x1234ABCD) -> list[bytes]:
    """G.711 RTP packets of one stream (RFC 3550): 160-byte payloads, seq and ts moving."""
    return [
        struct.pack("!BBHII", 0x80, 0, 1000 + i, 160 * i, ssrc) + os.urandom(160)
        for i in range(count)
    ]


def stun_binding_request() -> bytes:
    """A STUN Binding request (RFC 5389): magic cookie, random transaction id, no attributes."""
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)


def dtls_client_hello() -> bytes:
    """A DTLS 1.2 ClientHello record (RFC 6347) offering use_srtp, as WebRTC media sends."""
    use_srtp = struct.pack("!HHH", 14, 5, 2) + struct.pack("!HB", 0x0001, 0)  # SRTP_AES128...
    exts = use_srtp
    body = (b"\xfe\xfd" + os.urandom(32) + b"\x00" + b"\x00" + struct.pack("!HH", 2, 0xC02B)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)  # fmt: skip
    hs = b"\x01" + len(body).to_bytes(3, "big") + b"\x00\x00" + b"\x00\x00\x00"
    hs += len(body).to_bytes(3, "big") + body
    return b"\x16\xfe\xfd" + b"\x00\x00" + b"\x00" * 6 + struct.pack("!H", len(hs)) + hs


def xmpp_stream_open(domain: str = "chat.gatecrash.test") -> bytes:
    return (f"<?xml version='1.0'?><stream:stream to='{domain}' xmlns='jabber:client' "
            "xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>").encode()  # fmt: skip


def quic_initial(host: str, sni: str, port: int = 443) -> list[bytes]:
    """The datagrams a QUIC v1 client (aioquic) sends first: its Initial with the ClientHello."""
    import time

    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    config = QuicConfiguration(is_client=True, server_name=sni, alpn_protocols=["h3"])
    conn = QuicConnection(configuration=config)
    conn.connect((host, port), now=time.time())
    return [data for data, _ in conn.datagrams_to_send(now=time.time())]


def _draw(make: Callable[[random.Random], bytes], want: list[str], seed: int) -> bytes:
    """A payload from `make` whose FET exemptions are exactly `want` (1000 tries)."""
    rng = random.Random(seed)
    for _ in range(1000):
        data = make(rng)
        if evaluate(data)["exemptions"] == want:
            return data
    raise RuntimeError(f"no payload with exemptions {want} in 1000 draws")


def _rand(rng: random.Random, n: int) -> bytes:
    return bytes(rng.getrandbits(8) for _ in range(n))


def _high(rng: random.Random, n: int) -> bytes:
    return bytes(rng.choice(HIGH) for _ in range(n))


def _popcount_bytes(rng: random.Random, n: int, bits: int) -> bytes:
    """Non-printable bytes with exactly `bits` one-bits each (so popcount/byte = bits)."""
    pool = [b for b in HIGH if b.bit_count() == bits]
    return bytes(rng.choice(pool) for _ in range(n))


def fully_encrypted(seed: int, n: int = 256) -> bytes:
    """Random bytes no exemption applies to: what Shadowsocks' first packet looks like."""
    return _draw(lambda r: _rand(r, n), [], seed)


def _mixed_popcount(rng: random.Random, n: int, target: float) -> bytes:
    """Non-printable bytes averaging `target` one-bits per byte (3- and 4-bit bytes mixed)."""
    low, high = int(target), int(target) + 1
    pools = {k: [b for b in HIGH if b.bit_count() == k] for k in (low, high)}
    return bytes(rng.choice(pools[high if rng.random() < target - low else low]) for _ in range(n))


# rule -> (exempt payload maker, near-miss maker): the near miss differs only in the quantity
# the rule reads, and lands just on the blocked side of its threshold.
def exemption_pairs(n: int = 256) -> dict[str, tuple[bytes, bytes, str, str]]:
    """Per rule: (exempt payload, near-miss payload, what the exempt one is, what the miss is)."""

    def printable(rng: random.Random, k: int) -> bytes:
        return bytes(rng.choice(PRINTABLE) for _ in range(k))

    def spread_printable(rng: random.Random, share: float) -> bytes:
        # printable bytes scattered (never six at the start, never long runs)
        out = bytearray(_high(rng, n))
        slots = [i for i in range(n) if i % 3 != 0]  # every third byte stays non-printable
        for i in rng.sample(slots, int(n * share)):
            out[i] = rng.choice(PRINTABLE)
        return bytes(out)

    def run_at(rng: random.Random, k: int) -> bytes:
        base = bytearray(_rand(rng, n))
        base[0] = 0x80 | base[0]  # a non-printable first byte
        start = n // 2
        base[start - 1] = base[start + k] = 0x00  # the run is exactly k long
        base[start : start + k] = printable(rng, k)
        return bytes(base)

    return {
        "ex1_popcount": (
            _draw(lambda r: _mixed_popcount(r, n, 3.2), ["ex1_popcount"], 1),
            _draw(lambda r: _mixed_popcount(r, n, 3.6), [], 2),
            "popcount under 3.4 bits/byte",
            "popcount just over 3.4",
        ),
        "ex2_first_six_printable": (
            _draw(lambda r: printable(r, 6) + _rand(r, n - 6), ["ex2_first_six_printable"], 3),
            _draw(lambda r: printable(r, 5) + b"\x80" + _rand(r, n - 6), [], 4),
            "first 6 bytes printable",
            "first 5 bytes printable, 6th not",
        ),
        "ex3_printable_fraction": (
            _draw(lambda r: spread_printable(r, 0.55), ["ex3_printable_fraction"], 5),
            _draw(lambda r: spread_printable(r, 0.45), [], 6),
            "55% printable bytes (> 50%)",
            "45% printable bytes",
        ),
        "ex4_printable_run": (
            _draw(lambda r: run_at(r, 21), ["ex4_printable_run"], 7),
            _draw(lambda r: run_at(r, 20), [], 8),
            "a printable run of 21 bytes (> 20)",
            "a printable run of 20 bytes",
        ),
        "ex5_protocol": (
            _draw(lambda r: b"\x16\x03\x01" + _rand(r, n - 3), ["ex5_protocol"], 9),
            _draw(lambda r: b"\x16\x03\x10" + _rand(r, n - 3), [], 10),
            "TLS record prefix 16 03 01",
            "16 03 10 (third byte above 0x0f)",
        ),
    }


def junk(n: int = 200) -> bytes:
    return os.urandom(n)
