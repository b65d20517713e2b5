"""Protocol analyzers of the DPI engine, on bytes made by real programs and libraries.

TLS from Python's ssl (OpenSSL), QUIC from aioquic, DTLS from pyOpenSSL, DNS from dnslib,
HTTP from http.client, STUN/TURN from aioice, XMPP from slixmpp and SSH from asyncssh (and
OpenSSH when installed), each talking to a capturing socket on 127.0.0.1 where a peer is
needed. Formats no library here speaks (RTP, OpenVPN, WireGuard, WhatsApp's prologue,
Telegram's obfuscated2 preamble) are built field by field from their specifications.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import http.client
import os
import re
import socket
import ssl
import struct
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.x509.oid import NameOID

from censor_sims.analyzers import (
    ANALYZERS,
    Analyzer,
    FlowAnalysis,
    FlowInfo,
    Stream,
    classify,
    get,
    names,
)
from censor_sims.analyzers._quic_initial import (
    CryptoAssembler,
    InitialKeys,
    crypto_frames,
    decode_packet_number,
    long_headers,
    open_initial,
)
from censor_sims.analyzers.fet import evaluate, popcount_per_byte

TCP = FlowInfo("tcp", "10.77.0.2", 40123, "10.77.128.5", 443)
UDP = FlowInfo("udp", "10.77.0.2", 40123, "10.77.128.5", 443)


def client(*payloads: bytes) -> list[tuple[bool, bytes]]:
    return [(False, p) for p in payloads]


# -- TLS ---------------------------------------------------------------------------------------


def tls_client_hello(server_name: str = "chat.signal.org", alpn: list[str] | None = None) -> bytes:
    """The first flight of Python's ssl module (OpenSSL) for server_name."""
    ctx = ssl.create_default_context()
    if alpn:
        ctx.set_alpn_protocols(alpn)
    out = ssl.MemoryBIO()
    conn = ctx.wrap_bio(ssl.MemoryBIO(), out, server_hostname=server_name)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return out.read()


@pytest.fixture(scope="module")
def server_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A TLS server with a throw-away self-signed certificate."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat.signal.org")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    ctx.set_alpn_protocols(["h2"])
    return ctx


def test_tls_client_hello_from_openssl() -> None:
    hello = tls_client_hello("chat.signal.org", ["h2", "http/1.1"])
    props = classify(["tls"], TCP, client(hello))["tls"]
    assert props["looks_like"] is True
    assert props["handshake"] == "client_hello" and props["handshake_type"] == 1
    assert props["sni"] == "chat.signal.org"
    assert props["alpn"] == ["h2", "http/1.1"]
    assert props["version"] == "TLS1.3" and "TLS1.2" in props["supported_versions"]
    assert props["client_version"] == "TLS1.2"  # the frozen legacy field (RFC 8446 §4.1.2)
    assert 0 in props["extensions"] and 43 in props["extensions"]
    assert "truncated" not in props


def _three_segments(hello: bytes, cut_inside: bytes) -> list[bytes]:
    """Split like TCP-segmentation evasion does: a tiny first segment, the SNI cut in two."""
    at = hello.index(cut_inside) + len(cut_inside) // 2
    return [hello[:20], hello[20:at], hello[at:]]


def test_tls_split_over_three_segments_needs_reassembly() -> None:
    hello = tls_client_hello("blocked.example.org")
    segments = _three_segments(hello, b"blocked.example.org")
    assert b"".join(segments) == hello and all(segments)

    with_reassembly = classify([get("tls", reassemble=True)], TCP, client(*segments))["tls"]
    assert with_reassembly["sni"] == "blocked.example.org"

    without = classify([get("tls", reassemble=False)], TCP, client(*segments))["tls"]
    assert without["looks_like"] is True and without["handshake"] == "client_hello"
    assert "sni" not in without and without["truncated"] is True


def test_tls_without_reassembly_still_sees_an_sni_inside_the_first_segment() -> None:
    hello = tls_client_hello("blocked.example.org")
    end_of_sni = hello.index(b"blocked.example.org") + len("blocked.example.org")
    segments = [hello[: end_of_sni + 4], hello[end_of_sni + 4 :]]
    props = classify([get("tls", reassemble=False)], TCP, client(*segments))["tls"]
    assert props["sni"] == "blocked.example.org" and props["truncated"] is True


def test_tls_one_byte_first_segment_defeats_a_packet_by_packet_censor() -> None:
    hello = tls_client_hello("blocked.example.org")
    segments = client(hello[:1], hello[1:])
    assert classify([get("tls", reassemble=False)], TCP, segments)["tls"] == {"looks_like": False}
    assert classify(["tls"], TCP, segments)["tls"]["sni"] == "blocked.example.org"


def test_tls_handshake_fragmented_over_records_is_reassembled() -> None:
    hello = tls_client_hello("blocked.example.org")
    message = hello[5:]  # one record; re-frame its handshake message into 40-byte records
    records = b"".join(
        b"\x16\x03\x01" + struct.pack("!H", len(message[i : i + 40])) + message[i : i + 40]
        for i in range(0, len(message), 40)
    )
    props = classify(["tls"], TCP, client(records[:100], records[100:]))["tls"]
    assert props["sni"] == "blocked.example.org"


def test_tls_server_hello_from_a_real_handshake(server_context: ssl.SSLContext) -> None:
    client_ctx = ssl.create_default_context()
    client_ctx.check_hostname = False
    client_ctx.verify_mode = ssl.CERT_NONE
    client_ctx.set_alpn_protocols(["h2"])
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client_conn = client_ctx.wrap_bio(c_in, c_out, server_hostname="chat.signal.org")
    server_conn = server_context.wrap_bio(s_in, s_out, server_side=True)
    with pytest.raises(ssl.SSLWantReadError):
        client_conn.do_handshake()
    first = c_out.read()
    s_in.write(first)
    with pytest.raises(ssl.SSLWantReadError):
        server_conn.do_handshake()
    reply = s_out.read()
    props = classify(["tls"], TCP, [(False, first), (True, reply)])["tls"]
    assert props["sni"] == "chat.signal.org"
    assert props["server_hello"] is True and props["server_version"] == "TLS1.3"
    assert props["cipher"] in (0x1301, 0x1302, 0x1303)


def test_tls_analyzer_lets_go_of_a_flow_that_is_not_tls() -> None:
    flow = FlowAnalysis(["tls"], TCP)
    flow.feed(False, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert flow.done and flow.props == {"tls": {"looks_like": False}}


# -- QUIC --------------------------------------------------------------------------------------


def quic_initials(server_name: str, alpn: list[str], **config: Any) -> list[bytes]:
    """The datagrams aioquic's client sends first (Initials padded to 1200 bytes)."""
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    configuration = QuicConfiguration(
        is_client=True, server_name=server_name, alpn_protocols=alpn, **config
    )
    connection = QuicConnection(configuration=configuration)
    connection.connect(("10.77.128.5", 443), now=time.time())
    return [data for data, _ in connection.datagrams_to_send(now=time.time())]


def test_quic_initial_from_aioquic() -> None:
    datagrams = quic_initials("www.youtube.com", ["h3"])
    assert len(datagrams) == 1 and len(datagrams[0]) >= 1200
    props = classify(["quic"], UDP, client(*datagrams))["quic"]
    assert props["version"] == 1 and props["initial"] is True
    assert props["sni"] == "www.youtube.com" and props["alpn"] == ["h3"]
    assert props["tls_version"] == "TLS1.3" and props["quic_transport_parameters"] is True
    assert props["initial_datagram"] == 0


def test_quic_keys_match_rfc9001_appendix_a() -> None:
    # RFC 9001 A.1: client keys for DCID 0x8394c8f03e515708.
    keys = InitialKeys.client(bytes.fromhex("8394c8f03e515708"))
    assert keys.iv == bytes.fromhex("fa044b2f42a3fd3b46fb255c")
    mask = keys.hp.update(bytes.fromhex("d1b1c98dd7689fb8ec11d242b123dc9b"))
    assert mask[:5] == bytes.fromhex("437b9aec36")  # RFC 9001 A.2 header-protection mask


def test_quic_hello_spread_over_two_datagrams_in_either_order() -> None:
    alpn = [f"proto-{i:03d}-" + "x" * 20 for i in range(60)]  # a ~1.8 kB ClientHello
    datagrams = quic_initials("signal.example.org", alpn)
    assert len(datagrams) >= 2
    for order in (datagrams, datagrams[::-1]):
        flow = FlowAnalysis(["quic"], UDP)
        flow.feed(False, order[0])
        assert "sni" not in flow.props.get("quic", {})  # half a hello is not enough
        for datagram in order[1:]:
            flow.feed(False, datagram)
        assert flow.props["quic"]["sni"] == "signal.example.org"
        assert flow.props["quic"]["alpn"] == alpn and flow.done


def _client_hello_of(datagram: bytes) -> tuple[bytes, bytes]:
    """(DCID, the ClientHello message) of an aioquic Initial, read with our decryption."""
    header = long_headers(datagram)[0]
    payload, _ = open_initial(datagram, header, InitialKeys.client(header.dcid), -1)
    assembler = CryptoAssembler()
    for offset, data in crypto_frames(payload):
        assembler.add(offset, data)
    return header.dcid, assembler.contiguous()


def _varint(value: int) -> bytes:
    for length, prefix in ((1, 0), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if value < 1 << (8 * length - 2):
            return (value | prefix << (8 * length - 8)).to_bytes(length, "big")
    raise ValueError(value)


def _initial(
    dcid: bytes, frames: bytes, packet_number: int, keys_from: bytes | None = None
) -> bytes:
    """An Initial sealed by aioquic's own CryptoPair around frames we arrange ourselves;
    keys from `keys_from` (the client's first DCID) when the header carries another DCID."""
    from aioquic.quic.crypto import CryptoPair
    from aioquic.quic.packet import QuicProtocolVersion

    pair = CryptoPair()
    pair.setup_initial(keys_from or dcid, is_client=True, version=QuicProtocolVersion.VERSION_1)
    scid = os.urandom(8)
    pn = packet_number.to_bytes(2, "big")
    payload = frames + bytes(max(0, 1162 - len(frames)))  # PADDING up to a 1200-byte datagram
    header = (
        bytes([0xC1])  # long header, fixed bit, Initial, 2-byte packet number
        + struct.pack("!I", 1)
        + bytes([len(dcid)])
        + dcid
        + bytes([len(scid)])
        + scid
        + _varint(0)  # no token
        + _varint(len(pn) + len(payload) + 16)
        + pn
    )
    return pair.encrypt_packet(header, payload, packet_number)


def _crypto(offset: int, data: bytes) -> bytes:
    return b"\x06" + _varint(offset) + _varint(len(data)) + data


def test_quic_crypto_frames_out_of_order_with_ping_and_padding() -> None:
    # Chrome's "chaos protection": CRYPTO frames shuffled, PING and PADDING in between.
    dcid, hello = _client_hello_of(quic_initials("blocked.example.org", ["h3"])[0])
    cut1, cut2 = 50, hello.index(b"blocked.example.org") + 5
    frames = (
        _crypto(cut2, hello[cut2:])
        + b"\x01"  # PING
        + bytes(7)  # PADDING
        + _crypto(0, hello[:cut1])
        + b"\x01"
        + _crypto(cut1 - 10, hello[cut1 - 10 : cut2])  # overlaps the first chunk
    )
    props = classify(["quic"], UDP, client(_initial(dcid, frames, 0)))["quic"]
    assert props["sni"] == "blocked.example.org"


def test_quic_hello_across_two_packets_sealed_by_aioquic() -> None:
    dcid, hello = _client_hello_of(quic_initials("blocked.example.org", ["h3"])[0])
    half = len(hello) // 2
    ack = b"\x02" + _varint(0) + _varint(0) + _varint(0) + _varint(0)  # ACK frame
    first = _initial(dcid, _crypto(half, hello[half:]), 0)
    second = _initial(dcid, ack + _crypto(0, hello[:half]), 1)
    props = classify(["quic"], UDP, client(first, second))["quic"]
    assert props["sni"] == "blocked.example.org"


def test_quic_initial_keys_stay_those_of_the_first_dcid_and_follow_a_retry() -> None:
    dcid, hello = _client_hello_of(quic_initials("blocked.example.org", ["h3"])[0])
    half = len(hello) // 2
    first = _initial(dcid, _crypto(0, hello[:half]), 0)
    # After the server's first packet the client addresses the server's chosen CID, but
    # keeps the Initial keys of its original DCID (RFC 9001 §5.2).
    server_cid = os.urandom(8)
    second = _initial(server_cid, _crypto(half, hello[half:]), 1, keys_from=dcid)
    props = classify(["quic"], UDP, client(first, second))["quic"]
    assert props["sni"] == "blocked.example.org" and props["dcid"] == dcid.hex()
    # After a Retry, keys come from the new DCID the client picked up (RFC 9001 §5.2).
    retried = _initial(server_cid, _crypto(half, hello[half:]), 1)
    assert classify(["quic"], UDP, client(first, retried))["quic"]["sni"] == "blocked.example.org"


def test_quic_dummy_datagram_first_is_visible_to_rules() -> None:
    datagrams = quic_initials("www.youtube.com", ["h3"])
    props = classify(["quic"], UDP, client(b"\x00" * 8, *datagrams))["quic"]
    assert props["sni"] == "www.youtube.com" and props["initial_datagram"] == 1


def test_quic_v2_is_recognised_but_not_opened() -> None:
    from aioquic.quic.packet import QuicProtocolVersion

    v2 = QuicProtocolVersion.VERSION_2
    datagrams = quic_initials("www.youtube.com", ["h3"], supported_versions=[v2])
    props = classify(["quic"], UDP, client(*datagrams))["quic"]
    assert props == {"version": 0x6B3343CF}


def test_quic_ignores_the_server_direction_and_gives_up_on_non_quic() -> None:
    flow = FlowAnalysis(["quic"], UDP)
    # First byte 0x00: neither long header nor fixed bit, so never QUIC (random bytes are a
    # long header with a quarter chance, and their "version" would be published).
    for _ in range(3):
        flow.feed(True, quic_initials("x.example", ["h3"])[0])
        flow.feed(False, b"\x00" + os.urandom(99))
    assert not flow.done and flow.props == {}
    flow.feed(False, b"\x00" + os.urandom(99))
    assert flow.done


def test_quic_packet_number_decoding_rfc9000_a3() -> None:
    assert decode_packet_number(0xA82F30EA, 0x9B32, 16) == 0xA82F9B32  # RFC 9000 A.3
    assert decode_packet_number(-1, 0, 8) == 0


# -- DTLS --------------------------------------------------------------------------------------


def test_dtls_client_hello_from_pyopenssl() -> None:
    from OpenSSL import SSL

    ctx = SSL.Context(SSL.DTLS_METHOD)
    ctx.set_tlsext_use_srtp(b"SRTP_AES128_CM_SHA1_80")
    conn = SSL.Connection(ctx, None)
    conn.set_connect_state()
    conn.set_tlsext_host_name(b"turn.example.org")
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    datagram = conn.bio_read(65536)
    props = classify(["dtls"], UDP, client(datagram))["dtls"]
    assert props["yes"] is True and props["client_hello"] is True
    assert props["record_version"] == "DTLS1.0" and props["client_version"] == "DTLS1.2"
    assert props["sni"] == "turn.example.org" and props["use_srtp"] is True
    assert classify(["dtls"], UDP, client(tls_client_hello())) == {}


# -- DNS ---------------------------------------------------------------------------------------


def test_dns_query_and_response_from_dnslib() -> None:
    from dnslib import QTYPE, RCODE, RR, A, DNSRecord

    query = DNSRecord.question("web.whatsapp.com", "A")
    reply = query.reply()
    reply.add_answer(RR("web.whatsapp.com", QTYPE.A, rdata=A("157.240.1.53"), ttl=60))
    reply.add_answer(RR("web.whatsapp.com", QTYPE.A, rdata=A("157.240.1.54"), ttl=60))
    packets = [(False, query.pack()), (True, reply.pack())]
    flow = FlowAnalysis(["dns"], UDP)
    flow.feed(*packets[0])
    assert flow.props["dns"] == {
        "id": query.header.id,
        "is_response": False,
        "opcode": 0,
        "qname": "web.whatsapp.com",
        "qtype": "A",
    }
    flow.feed(*packets[1])
    props = flow.props["dns"]
    assert props["is_response"] is True and props["rcode"] == "NOERROR"
    assert props["answers"] == ["157.240.1.53", "157.240.1.54"]
    # A resolver sends its next query from the same port: the flow is still read.
    assert not flow.done
    again = DNSRecord.question("signal.org", "A")
    flow.feed(False, again.pack())
    assert flow.props["dns"]["qname"] == "signal.org" and not flow.props["dns"]["is_response"]

    nx = query.reply()
    nx.header.rcode = RCODE.NXDOMAIN
    aaaa = DNSRecord.question("signal.org", "AAAA")
    assert classify(["dns"], UDP, [(True, nx.pack())])["dns"]["rcode"] == "NXDOMAIN"
    assert classify(["dns"], UDP, client(aaaa.pack()))["dns"]["qtype"] == "AAAA"


def test_dns_over_tcp_framing_split_across_segments() -> None:
    from dnslib import DNSRecord

    wire = DNSRecord.question("Telegram.ORG", "HTTPS").pack()
    framed = struct.pack("!H", len(wire)) + wire
    props = classify(["dns"], TCP, client(framed[:1], framed[1:9], framed[9:]))["dns"]
    assert props["qname"] == "Telegram.ORG" and props["qtype"] == "HTTPS"  # case as sent


def test_dns_compression_pointer_loop_is_just_malformed() -> None:
    header = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
    looped = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"  # the name points at itself
    flow = FlowAnalysis(["dns"], UDP)
    flow.feed(False, looped)
    assert flow.props == {} and flow.errors == [] and flow.done


# -- HTTP --------------------------------------------------------------------------------------


class _CaptureSocket:
    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


def test_http_request_from_http_client_and_a_response() -> None:
    conn = http.client.HTTPConnection("blocked.example.org", 80)
    conn.sock = _CaptureSocket()  # type: ignore[assignment]
    conn.request("GET", "/watch?v=1", headers={"User-Agent": "gatecrash"})
    request = conn.sock.data  # type: ignore[attr-defined]
    response = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
    packets = [(False, request[:10]), (False, request[10:]), (True, response)]
    props = classify(["http"], TCP, packets)["http"]
    assert props["method"] == "GET" and props["path"] == "/watch?v=1"
    assert props["version"] == "HTTP/1.1" and props["host"] == "blocked.example.org"
    assert props["user_agent"] == "gatecrash"
    assert props["status"] == 403 and props["reason"] == "Forbidden"
    assert classify(["http"], TCP, client(tls_client_hello())) == {}


# -- SIP ---------------------------------------------------------------------------------------

# An INVITE in the shape baresip 1.x sends it (header order, Via branch, compact SDP).
INVITE_BODY = (
    "v=0\r\n"
    "o=- 1797457128 3282917470 IN IP4 10.77.0.2\r\n"
    "s=-\r\n"
    "c=IN IP4 10.77.0.2\r\n"
    "t=0 0\r\n"
    "m=audio 10000 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n"
)
INVITE = (
    "INVITE sip:bob@voip.example SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.77.0.2:5060;branch=z9hG4bK6b63f06c8b0d1a1b;rport\r\n"
    "Contact: <sip:alice-0x55d5@10.77.0.2:5060>\r\n"
    "Max-Forwards: 70\r\n"
    'To: "Bob" <sip:bob@voip.example>\r\n'
    'From: "Alice" <sip:alice@voip.example>;tag=2b9e8f21b3a4f7b6\r\n'
    "Call-ID: 0f2a9d0b1c6e5a47\r\n"
    "CSeq: 27371 INVITE\r\n"
    "User-Agent: baresip v3.10.1 (x86_64/linux)\r\n"
    "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,REFER,INFO,MESSAGE,UPDATE\r\n"
    "Supported: replaces,norefersub,100rel\r\n"
    "Content-Type: application/sdp\r\n"
    f"Content-Length: {len(INVITE_BODY)}\r\n"
    "\r\n" + INVITE_BODY
).encode()
RINGING = (
    b"SIP/2.0 180 Ringing\r\n"
    b"Via: SIP/2.0/UDP 10.77.0.2:5060;branch=z9hG4bK6b63f06c8b0d1a1b;rport=5060\r\n"
    b"To: <sip:bob@voip.example>;tag=as5f1c\r\n"
    b"From: <sip:alice@voip.example>;tag=2b9e8f21b3a4f7b6\r\n"
    b"Call-ID: 0f2a9d0b1c6e5a47\r\n"
    b"CSeq: 27371 INVITE\r\n"
    b"Server: kamailio (5.6.3 (x86_64/linux))\r\n"
    b"Content-Length: 0\r\n\r\n"
)


def test_sip_invite_over_udp() -> None:
    flow = FlowAnalysis(["sip"], UDP)
    flow.feed(False, INVITE)
    props = dict(flow.props["sip"])
    assert props["method"] == "INVITE" and props["request_uri"] == "sip:bob@voip.example"
    assert props["call_id"] == "0f2a9d0b1c6e5a47"
    assert props["from"] == "sip:alice@voip.example" and props["to"] == "sip:bob@voip.example"
    assert props["user_agent"].startswith("baresip")
    flow.feed(True, RINGING)
    assert flow.props["sip"]["status"] == 180 and flow.props["sip"]["reason"] == "Ringing"


def test_sip_over_tcp_split_and_pipelined_with_compact_headers() -> None:
    compact = (
        b"OPTIONS sip:voip.example SIP/2.0\r\nv: SIP/2.0/TCP 10.77.0.2;branch=z9hG4bKx\r\n"
        b"f: <sip:probe@voip.example>;tag=1\r\nt: sip:voip.example\r\ni: opt-42\r\n"
        b"CSeq: 1 OPTIONS\r\nl: 0\r\n\r\n"
    )
    stream = INVITE + compact
    flow = FlowAnalysis(["sip"], TCP)
    for i in range(0, len(stream), 100):
        flow.feed(False, stream[i : i + 100])
    props = flow.props["sip"]
    assert props["method"] == "OPTIONS" and props["call_id"] == "opt-42"  # the later one
    assert props["from"] == "sip:probe@voip.example" and props["to"] == "sip:voip.example"
    assert not flow.errors


def test_sip_analyzer_drops_a_flow_that_is_not_sip() -> None:
    flow = FlowAnalysis(["sip"], UDP)
    flow.feed(False, b"\x80\x00" + os.urandom(170))
    assert flow.done and flow.props == {}


# -- RTP / RTCP ----------------------------------------------------------------------------------


def rtp(seq: int, ssrc: int = 0x1234ABCD, pt: int = 0, timestamp: int = 0) -> bytes:
    """RFC 3550 §5.1: V=2, P=0, X=0, CC=0, M=0, PT, sequence, timestamp, SSRC; 160 samples."""
    return struct.pack("!BBHII", 0x80, pt, seq & 0xFFFF, timestamp, ssrc) + bytes(160)


def test_rtp_needs_three_consistent_packets() -> None:
    flow = FlowAnalysis(["rtp"], UDP)
    flow.feed(False, rtp(65534, timestamp=0))
    flow.feed(False, rtp(65535, timestamp=160))
    assert flow.props == {}
    flow.feed(False, rtp(0, timestamp=320))  # wraps around
    assert flow.props["rtp"] == {
        "yes": True,
        "payload_type": 0,
        "ssrc": 0x1234ABCD,
        "packets": 3,
        "direction": "upstream",
    }
    assert flow.done


def test_rtp_tolerates_a_lost_packet_but_not_a_changing_ssrc_or_random_data() -> None:
    assert classify(["rtp"], UDP, client(rtp(10), rtp(12), rtp(13)))["rtp"]["yes"] is True
    changing = client(*(rtp(i, ssrc=i) for i in range(10)))
    assert classify(["rtp"], UDP, changing) == {}
    # Version 2 and an RTP-range second byte (RTCP types 200-207 need its high bit set).
    noise = client(*(bytes([0x80, os.urandom(1)[0] & 0x7F]) + os.urandom(170) for _ in range(20)))
    assert classify(["rtp"], UDP, noise) == {}


def test_rtcp_packet_types_are_told_apart() -> None:
    # RFC 3550 §6.4.1 SR without report blocks (length 6 words) and §6.5 SDES with a CNAME.
    sr = struct.pack("!BBHIIIIII", 0x80, 200, 6, 0x1234ABCD, 1, 2, 3, 4, 5)
    cname = b"\x01\x08alice@ex\x00\x00"
    sdes = struct.pack("!BBHI", 0x81, 202, (4 + len(cname)) // 4, 0x1234ABCD) + cname
    bye = struct.pack("!BBHI", 0x81, 203, 1, 0x1234ABCD)
    props = classify(["rtp"], UDP, client(sr + sdes, bye))["rtp"]
    assert props == {"rtcp": True, "rtcp_types": ["SR", "SDES", "BYE"]}
    assert classify(["rtp"], UDP, client(sdes))["rtp"]["rtcp_types"] == ["SDES"]


# -- STUN / TURN --------------------------------------------------------------------------------


def stun_binding_request(transaction_id: bytes) -> bytes:
    """RFC 5389 §6 by hand: type 0x0001, length 0, magic cookie, 96-bit transaction id."""
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction_id


def test_stun_binding_request_matches_aioice_and_is_recognised() -> None:
    from aioice import stun

    txid = os.urandom(12)
    ours = stun_binding_request(txid)
    theirs = bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST, transaction_id=txid))
    assert ours == theirs
    props = classify(["stun"], UDP, client(ours))["stun"]
    assert props["yes"] is True and props["method"] == "binding" and props["class"] == "request"
    assert props["transaction_id"] == txid.hex() and props["turn"] is False


def test_turn_allocate_success_and_channel_data_from_aioice() -> None:
    from aioice import stun

    allocate = stun.Message(stun.Method.ALLOCATE, stun.Class.REQUEST)
    allocate.attributes["REQUESTED-TRANSPORT"] = 17 << 24
    allocate.attributes["SOFTWARE"] = "gatecrash-turn-client"
    allocate.attributes["USERNAME"] = "alice"
    success = stun.Message(
        stun.Method.ALLOCATE, stun.Class.RESPONSE, transaction_id=allocate.transaction_id
    )
    success.attributes["LIFETIME"] = 600
    media = rtp(1)
    channel_data = struct.pack("!HH", 0x4001, len(media)) + media  # as aioice's turn sends it
    packets = [(False, bytes(allocate)), (True, bytes(success)), (False, channel_data)]
    flow = FlowAnalysis(["stun"], UDP)
    for rev, data in packets[:2]:
        flow.feed(rev, data)
    props = flow.props["stun"]
    assert props["method"] == "allocate" and props["turn"] is True
    assert props["software"] == "gatecrash-turn-client" and props["username"] == "alice"
    assert props["response_method"] == "allocate" and props["response_class"] == "success"
    assert flow.done  # both sides spoke STUN
    later = FlowAnalysis(["stun"], UDP)
    later.feed(False, bytes(allocate))
    later.feed(False, channel_data)
    assert later.props["stun"]["channel_data"] is True and later.props["stun"]["channel"] == 0x4001


def test_stun_over_tcp_bare_and_rfc4571_framed() -> None:
    request = stun_binding_request(os.urandom(12))
    bare = classify(["stun"], TCP, client(request))["stun"]
    framed = classify(["stun"], TCP, client(struct.pack("!H", len(request)) + request))["stun"]
    assert bare["framing"] == "none" and framed["framing"] == "rfc4571"
    assert bare["method"] == framed["method"] == "binding"


# -- XMPP, SSH: real clients against a capturing socket ------------------------------------------


async def _serve_once(
    talk: Callable[[asyncio.StreamReader, asyncio.StreamWriter, list], Awaitable[None]],
    client_run: Callable[[int], Awaitable[Any]],
) -> list[tuple[bool, bytes]]:
    """Run a client against a one-shot server on 127.0.0.1; the segments both sides sent."""
    segments: list[tuple[bool, bytes]] = []
    finished = asyncio.get_running_loop().create_future()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await talk(reader, writer, segments)
        finally:
            writer.close()
            if not finished.done():
                finished.set_result(None)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    task = asyncio.ensure_future(client_run(port))
    try:
        await asyncio.wait_for(finished, 10)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        server.close()
    return segments


async def _read_until(
    reader: asyncio.StreamReader, pattern: bytes, segments: list[tuple[bool, bytes]]
) -> None:
    seen = b""
    while not re.search(pattern, seen):
        chunk = await reader.read(65536)
        if not chunk:
            raise EOFError(pattern)
        segments.append((False, chunk))
        seen += chunk


def test_xmpp_stream_header_and_starttls_from_slixmpp() -> None:
    import slixmpp

    async def talk(reader, writer, segments) -> None:
        await _read_until(reader, rb"<stream:stream[^>]*>", segments)
        features = (
            b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
            b"xmlns:stream='http://etherx.jabber.org/streams' id='s1' from='chat.example' "
            b"version='1.0'><stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>"
            b"<required/></starttls></stream:features>"
        )
        proceed = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
        segments.append((True, features))
        writer.write(features)
        await _read_until(reader, rb"<starttls", segments)
        segments.append((True, proceed))
        writer.write(proceed)
        segments.append((False, await reader.read(65536)))  # the TLS ClientHello

    async def run_client(port: int) -> None:
        agent = slixmpp.ClientXMPP("alice@chat.example/phone", "secret")
        agent.enable_direct_tls = False
        agent.connect("127.0.0.1", port)
        try:
            await asyncio.sleep(30)
        finally:
            agent.abort()

    segments = asyncio.run(_serve_once(talk, run_client))
    props = classify(["xmpp", "tls"], TCP, segments)
    xmpp = props["xmpp"]
    assert xmpp["yes"] is True and xmpp["to"] == "chat.example" and xmpp["ns"] == "jabber:client"
    assert xmpp["starttls"] is True and xmpp["starttls_offered"] is True and xmpp["proceed"]
    assert xmpp["server_from"] == "chat.example"
    assert props["tls"] == {"looks_like": False}  # the TLS analyzer reads stream starts only
    tls_after = classify(["tls"], TCP, segments[-1:])["tls"]
    assert tls_after["sni"] == "chat.example"


def test_ssh_banner_from_asyncssh() -> None:
    import asyncssh

    async def talk(reader, writer, segments) -> None:
        await _read_until(reader, rb"\n", segments)
        banner = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n"
        segments.append((True, banner))

    async def run_client(port: int) -> None:
        await asyncssh.connect("127.0.0.1", port, known_hosts=None, login_timeout=10)

    segments = asyncio.run(_serve_once(talk, run_client))
    props = classify(["ssh"], TCP, segments)["ssh"]
    assert props["yes"] is True and props["protocol"] == "2.0"
    assert props["software"] == f"AsyncSSH_{asyncssh.__version__}"
    assert props["server_software"] == "OpenSSH_9.2p1"
    assert props["server_comments"] == "Debian-2+deb12u3"


def test_ssh_banner_from_the_openssh_client() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        ssh = subprocess.Popen(
            [
                "ssh",
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-p",
                str(port),
                "probe@127.0.0.1",
                "true",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                first = conn.recv(4096)
        finally:
            ssh.kill()
            ssh.wait(timeout=10)
    props = classify(["ssh"], TCP, client(first))["ssh"]
    assert props["yes"] is True and props["software"].startswith("OpenSSH_")


def test_ssh_server_prelude_lines_are_skipped() -> None:
    packets = [
        (False, b"SSH-2.0-PuTTY_Release_0.80\r\n"),
        (True, b"Welcome\r\nno ssh here yet\r\nSSH-2.0-dropbear_2022.83\r\n"),
    ]
    props = classify(["ssh"], TCP, packets)["ssh"]
    assert props["software"] == "PuTTY_Release_0.80" and props["comments"] is None
    assert props["server_software"] == "dropbear_2022.83"


# -- OpenVPN, WireGuard --------------------------------------------------------------------------


def openvpn_hard_reset(opcode: int = 7, session: bytes = b"\x11" * 8) -> bytes:
    """P_CONTROL_HARD_RESET_CLIENT_V2 without tls-auth (OpenVPN ssl_pkt.h): opcode<<3 | key
    id 0, session id, an empty ACK array, message packet id 0."""
    return bytes([opcode << 3]) + session + b"\x00" + struct.pack("!I", 0)


def test_openvpn_hard_reset_over_udp_and_tcp() -> None:
    reset = openvpn_hard_reset()
    server = bytes([8 << 3]) + b"\x22" * 8 + b"\x01" + struct.pack("!I", 0) + b"\x11" * 8 + bytes(4)
    ack = bytes([5 << 3]) + b"\x11" * 8 + b"\x01" + struct.pack("!I", 0) + b"\x22" * 8
    props = classify(["openvpn"], UDP, [(False, reset), (True, server), (False, ack)])["openvpn"]
    assert props["yes"] is True and props["opcode"] == "P_CONTROL_HARD_RESET_CLIENT_V2"
    assert props["session_id"] == "11" * 8 and props["key_id"] == 0
    assert props["server_reset"] is True and props["server_session_id"] == "22" * 8
    assert props["client_opcodes"] == [7, 5] and props["transport"] == "udp"

    framed = struct.pack("!H", len(reset)) + reset
    tcp = classify(["openvpn"], TCP, client(framed[:3], framed[3:]))["openvpn"]
    assert tcp["yes"] is True and tcp["transport"] == "tcp"
    v3 = openvpn_hard_reset(opcode=10) + os.urandom(300)  # tls-crypt-v2 wrapped key
    assert classify(["openvpn"], UDP, client(v3))["openvpn"]["opcode"].endswith("CLIENT_V3")
    assert classify(["openvpn"], TCP, client(tls_client_hello())) == {}


def test_openvpn_reset_layouts_and_dns_that_only_starts_like_one() -> None:
    """A client's first packet is a reset by its layout, not its first byte: DNS queries
    whose random id starts 0x08 / 0x38 / 0x50 (3 in 256) are not OpenVPN."""
    session, hmac, now = b"\x11" * 8, os.urandom(20), struct.pack("!I", int(time.time()))
    tls_auth = bytes([7 << 3]) + session + hmac + b"\x00\x00\x00\x01" + now + bytes(5)
    tls_crypt = bytes([7 << 3]) + session + b"\x00\x00\x00\x01" + now + os.urandom(32 + 60)
    for packet, layout in ((openvpn_hard_reset(), "plain"), (tls_auth, "tls-auth"),
                           (tls_crypt, "tls-crypt")):  # fmt: skip
        assert classify(["openvpn"], UDP, client(packet))["openvpn"]["layout"] == layout
    question = b"\x04voip\x09gatecrash\x04test\x00" + struct.pack("!HH", 1, 1)
    for first in (0x08, 0x38, 0x50):
        query = bytes([first, 0x42]) + struct.pack("!HHHHH", 0x0100, 1, 0, 0, 0) + question
        assert classify(["openvpn"], UDP, client(query)) == {}


def wireguard_initiation(sender: int) -> bytes:
    """Whitepaper §5.4.2: type 1, 3 reserved zero bytes, sender index (LE), unencrypted
    ephemeral (32), encrypted static (32+16), encrypted timestamp (12+16), mac1, mac2."""
    return (
        struct.pack("<I", 1) + struct.pack("<I", sender) + os.urandom(32 + 48 + 28 + 16) + bytes(16)
    )


def test_wireguard_handshake_and_transport() -> None:
    initiation = wireguard_initiation(0xDEADBEEF)
    assert len(initiation) == 148
    response = struct.pack("<III", 2, 0x01020304, 0xDEADBEEF) + os.urandom(32 + 16 + 16) + bytes(16)
    assert len(response) == 92
    data = struct.pack("<II", 4, 0x01020304) + struct.pack("<Q", 0) + os.urandom(16 + 16)
    props = classify(["wireguard"], UDP, [(False, initiation), (True, response), (False, data)])
    wg = props["wireguard"]
    assert wg["yes"] is True and wg["message_type"] == "initiation"
    assert wg["sender_index"] == 0xDEADBEEF and wg["handshake"] is True
    assert wg["transport"] is True and wg["messages"] == ["initiation", "response", "data"]
    assert classify(["wireguard"], UDP, client(initiation[:147])) == {}
    reserved_set = b"\x01\x00\x01\x00" + initiation[4:]  # reserved bytes must be zero
    assert classify(["wireguard"], UDP, client(reserved_set)) == {}


# -- WhatsApp, Telegram, FET ----------------------------------------------------------------------


def whatsapp_first_frame(header: bytes = b"WA\x06\x03") -> bytes:
    """Baileys `encodeFrame` for the first message: the prologue, a 3-byte length and a
    HandshakeMessage{clientHello (field 2){ephemeral (field 1): 32 bytes}} protobuf."""
    hello = b"\x0a\x20" + os.urandom(32)
    message = b"\x12" + bytes([len(hello)]) + hello
    return header + len(message).to_bytes(3, "big") + message


def test_whatsapp_prologue_current_old_and_routed() -> None:
    props = classify(["whatsapp"], TCP, client(whatsapp_first_frame()))["whatsapp"]
    assert props == {
        "yes": True,
        "version": "6.3",
        "known_version": True,
        "frame_length": 36,
        "client_hello": True,
    }
    old = classify(["whatsapp"], TCP, client(whatsapp_first_frame(b"WA\x05\x02")))["whatsapp"]
    assert old["version"] == "5.2" and old["known_version"] is True
    routing = os.urandom(9)
    routed = b"ED\x00\x01" + len(routing).to_bytes(3, "big") + routing + whatsapp_first_frame()
    props = classify(["whatsapp"], TCP, client(routed[:5], routed[5:]))["whatsapp"]
    assert props["routing_info"] is True and props["version"] == "6.3"
    split = whatsapp_first_frame()
    assert classify(["whatsapp"], TCP, client(split[:2], split[2:]))["whatsapp"]["yes"]
    assert classify(["whatsapp"], TCP, client(tls_client_hello())) == {}


def obfuscated2_preamble(framing: bytes = b"\xee" * 4, dc: int = 2, secret: bytes = b"") -> bytes:
    """tdlib ObfuscatedTransport::init: redraw while a forbidden value shows, put the framing
    tag and dc id at 56..62, encrypt with AES-256-CTR (key 8..40, iv 40..56), send bytes 0..56
    as drawn and 56..64 encrypted. With an MTProxy secret the key is SHA-256(key || secret)."""
    from hashlib import sha256

    from censor_sims.analyzers.mtproto import preamble_allowed

    while True:
        header = bytearray(os.urandom(64))
        if preamble_allowed(bytes(header)):
            break
    header[56:60] = framing
    header[60:62] = struct.pack("<h", dc)
    key = bytes(header[8:40])
    if secret:
        key = sha256(key + secret).digest()
    encrypted = Cipher(algorithms.AES(key), modes.CTR(bytes(header[40:56]))).encryptor()
    return bytes(header[:56]) + encrypted.update(bytes(header))[56:]


def test_mtproto_obfuscated2_preamble() -> None:
    direct = classify(["mtproto"], TCP, client(obfuscated2_preamble(dc=-2) + os.urandom(40)))
    props = direct["mtproto"]
    assert props["obfuscated2_candidate"] is True and props["obfuscated2"] is True
    assert props["framing"] == "intermediate" and props["dc_id"] == -2 and props["length"] == 104
    proxied = classify(["mtproto"], TCP, client(obfuscated2_preamble(secret=os.urandom(16))))
    assert proxied["mtproto"]["obfuscated2_candidate"] is True
    assert "obfuscated2" not in proxied["mtproto"]

    for forbidden in (b"\xef", b"HEAD", b"POST", b"GET ", b"OPTI", b"\xdd" * 4, b"\xee" * 4):
        data = forbidden + os.urandom(64 - len(forbidden))
        assert classify(["mtproto"], TCP, client(data))["mtproto"]["obfuscated2_candidate"] is False
    zero_second = os.urandom(4) + bytes(4) + os.urandom(56)
    tls_like = b"\x16\x03\x01\x02" + os.urandom(60)
    for data in (zero_second, tls_like, os.urandom(63), bytes(64)):
        assert classify(["mtproto"], TCP, client(data))["mtproto"]["obfuscated2_candidate"] is False


def test_mtproto_does_not_take_a_long_tls_client_hello_for_a_preamble() -> None:
    """tdlib's redraw rule exempts only 16 03 01 02; a ClientHello past 767 bytes (long SNI,
    many ALPN ids, as browsers send) starts 16 03 01 03+ and is random-looking after that."""
    hello = tls_client_hello("a" * 60 + ".example.test", alpn=[f"p{i:03d}" for i in range(120)])
    assert hello[:3] == b"\x16\x03\x01" and hello[3] > 0x02
    props = classify(["mtproto"], TCP, client(hello))["mtproto"]
    assert props["obfuscated2_candidate"] is False and props["tls_record"] is True


def test_fet_popcount_reference_vectors() -> None:
    assert popcount_per_byte(bytes(8)) == 0.0
    assert popcount_per_byte(b"\xff" * 8) == 8.0
    assert popcount_per_byte(b"\x0f\xf0") == 4.0
    assert popcount_per_byte(b"\x01\x03\x07") == 2.0
    # Exactly on the paper's thresholds (<= 3.4, >= 4.6 are exempt), no printable bytes:
    assert evaluate(b"\x0f\x0f\x0f\x0f\x01")["exemption"] == "ex1_popcount"  # 17/5 = 3.4
    assert evaluate(b"\x1f\x1f\x1f\x1f\x07")["exemption"] == "ex1_popcount"  # 23/5 = 4.6
    inside = evaluate(b"\x0f\x0f\x0f\x0f\x03")  # 18/5 = 3.6
    assert inside["yes"] is True and inside["exemptions"] == []


def test_fet_random_payloads_are_mostly_flagged() -> None:
    flagged = sum(
        classify(["fet"], TCP, client(os.urandom(length)))["fet"]["yes"]
        for length in range(100, 1100, 5)
    )
    assert flagged >= 190  # of 200: what Shadowsocks-like proxies send


def test_fet_exemptions_for_tls_http_and_text() -> None:
    tls = classify(["fet"], TCP, client(tls_client_hello()))["fet"]
    assert tls["yes"] is False and "ex5_protocol" in tls["exemptions"] and tls["protocol"] == "tls"
    conn = http.client.HTTPConnection("example.org")
    conn.sock = _CaptureSocket()  # type: ignore[assignment]
    conn.request("POST", "/", body=os.urandom(600))
    http_props = classify(["fet"], TCP, client(conn.sock.data))["fet"]  # type: ignore[attr-defined]
    assert http_props["yes"] is False and http_props["protocol"] == "http"
    assert http_props["exemption"] == "ex2_first_six_printable"
    text = classify(["fet"], TCP, client(b"\x00\x01" + b"plain words, nothing hidden" * 4))["fet"]
    assert text["yes"] is False and text["exemption"] == "ex3_printable_fraction"
    assert text["longest_printable_run"] == 27 * 4
    six = b"ABCDEF" + os.urandom(500)
    assert evaluate(six)["exemption"] in ("ex1_popcount", "ex2_first_six_printable")
    assert "ex2_first_six_printable" in evaluate(six)["exemptions"]


def test_fet_tls_third_byte_range_is_configurable() -> None:
    record = b"\x17\x03\x0a" + os.urandom(300)
    assert evaluate(record)["protocol"] is None  # the paper: [\x00-\x09]
    artifact = get("fet", tls_third_byte_max=0x0F)
    assert classify([artifact], TCP, client(record))["fet"]["protocol"] == "tls"


def test_fet_only_sees_tcp_and_the_first_client_payload() -> None:
    assert get("fet").new_udp(UDP) is None
    packets = [(True, b"220 smtp ready\r\n"), (False, os.urandom(400)), (False, b"GET / HTTP/1.1")]
    props = classify(["fet"], TCP, packets)["fet"]
    assert props["length"] == 400


# -- The engine-facing contract -----------------------------------------------------------------


def test_registry_lists_every_analyzer_and_names_the_choices() -> None:
    expected = {"dns", "tls", "quic", "http", "sip", "rtp", "stun", "dtls", "xmpp", "ssh"}
    expected |= {"openvpn", "wireguard", "whatsapp", "fet", "mtproto"}
    assert set(names()) == expected == set(ANALYZERS)
    for name in expected:
        analyzer = get(name)
        assert analyzer.name == name and analyzer.limit > 0
    with pytest.raises(ValueError, match="choose one of: dns, dtls"):
        get("skype")


class _Recorder(Analyzer, register=False):
    name = "recorder"
    limit = 100

    def __init__(self) -> None:
        self.fed: list[tuple[bool, int]] = []

    def new_tcp(self, info: FlowInfo) -> Stream:
        analyzer = self

        class _S(Stream):
            def feed(self, rev: bool, data: bytes) -> tuple[dict | None, bool]:
                analyzer.fed.append((rev, len(data)))
                return {"bytes": sum(n for r, n in analyzer.fed if r == rev)}, False

        return _S()

    new_udp = new_tcp


def test_limit_caps_the_bytes_each_direction_shows_an_analyzer() -> None:
    recorder = _Recorder()
    assert "recorder" not in ANALYZERS
    packets = [(False, bytes(60)), (True, bytes(30)), (False, bytes(60)), (False, bytes(5))]
    flow = FlowAnalysis([recorder], TCP)
    for rev, data in packets:
        flow.feed(rev, data)
    assert recorder.fed == [(False, 60), (True, 30), (False, 40)]  # TCP cut at the limit
    assert not flow.done  # the server direction has budget left
    flow.feed(True, bytes(500))
    assert flow.done and recorder.fed[-1] == (True, 70)

    udp = _Recorder()
    classify([udp], UDP, [(False, bytes(60)), (False, bytes(60)), (False, bytes(60))])
    assert udp.fed == [(False, 60), (False, 60)]  # UDP datagrams whole while budget lasts


class _Broken(Analyzer, register=False):
    name = "broken"
    limit = 1000

    def new_tcp(self, info: FlowInfo) -> Stream:
        class _S(Stream):
            def feed(self, rev: bool, data: bytes) -> tuple[dict | None, bool]:
                raise IndexError("analyzer bug")

        return _S()


def test_an_analyzer_that_raises_is_dropped_and_the_others_go_on() -> None:
    hello = tls_client_hello("chat.signal.org")
    flow = FlowAnalysis([_Broken(), "tls"], TCP)
    flow.feed(False, hello)
    assert flow.props["tls"]["sni"] == "chat.signal.org"
    assert flow.errors == [("broken", "IndexError: analyzer bug")]


def test_classify_merges_every_analyzer_on_a_tls_flow() -> None:
    hello = tls_client_hello("chat.signal.org", ["h2"])
    props = classify(names(), TCP, client(hello))
    assert props["tls"]["sni"] == "chat.signal.org"
    assert props["fet"]["yes"] is False
    assert props["mtproto"]["obfuscated2_candidate"] is False  # 16 03 01 02 is tdlib's hole
    assert set(props) <= {"tls", "fet", "mtproto"}


# -- Cross-check with Wireshark's dissectors, when tshark is there -------------------------------


def _pcap(datagrams: list[tuple[str, bytes]]) -> bytes:
    """A pcap (LINKTYPE_RAW) of IPv4 packets: ("udp"|"tcp", payload) client -> server."""
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 101)
    for i, (proto, payload) in enumerate(datagrams):
        if proto == "udp":
            l4 = struct.pack("!HHHH", 40123, 443, 8 + len(payload), 0) + payload
            number = 17
        else:
            l4 = struct.pack("!HHIIBBHHH", 40123, 443, 1000, 0, 0x50, 0x18, 65535, 0, 0) + payload
            number = 6
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(l4),
            i,
            0,
            64,
            number,
            0,
            socket.inet_aton("10.77.0.2"),
            socket.inet_aton("10.77.128.5"),
        )
        packet = ip + l4
        out += struct.pack("<IIII", 1_700_000_000 + i, 0, len(packet), len(packet)) + packet
    return out


def test_sni_agrees_with_wireshark_for_tls_and_quic(tmp_path: Path) -> None:
    quic = quic_initials("quic.example.org", ["h3"])[0]
    tls = tls_client_hello("tls.example.org")
    capture = tmp_path / "hellos.pcap"
    capture.write_bytes(_pcap([("udp", quic), ("tcp", tls)]))
    fields = ["-e", "tls.handshake.extensions_server_name"]
    result = subprocess.run(
        ["tshark", "-n", "-r", str(capture), "-T", "fields", *fields],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    wireshark = [line for line in result.stdout.splitlines() if line]
    ours = [
        classify(["quic"], UDP, client(quic))["quic"]["sni"],
        classify(["tls"], TCP, client(tls))["tls"]["sni"],
    ]
    assert wireshark == ours == ["quic.example.org", "tls.example.org"]


def test_each_analyzer_says_itself_when_a_flow_is_its_protocol() -> None:
    """The question every blocking technique asks is answered by the analyzer that
    published the properties, not by a table in one technique."""
    from censor_sims.analyzers.base import ANALYZERS, recognised

    assert recognised("sip", {"method": "INVITE"}) and recognised("sip", {"status": 200})
    assert recognised("tls", {"handshake": "client_hello"})
    assert not recognised("tls", {"handshake": "server_hello"})
    assert recognised("quic", {"initial": True}) and recognised("http", {"method": "GET"})
    assert recognised("mtproto", {"obfuscated2_candidate": True})
    for name in ANALYZERS:
        assert not recognised(name, {}), name
    assert recognised("rtp", {"yes": True}) and recognised("wireguard", {"yes": True})
