"""Property tests: no input makes an analyzer raise, and a few parsers agree with references.

Random packets and real packets mutated (bit flips, truncation, splitting, concatenation,
insertion) go to every analyzer twice: straight into its streams, so the guarantee does
not rest on the engine's guard, and through `FlowAnalysis`, whose `errors` must stay empty.
"""

from __future__ import annotations

import math
import os
import struct

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from censor_sims.analyzers import ANALYZERS, FlowAnalysis, FlowInfo, get, names
from censor_sims.analyzers.fet import evaluate
from tests.unit.test_analyzers import (
    INVITE,
    RINGING,
    _client_hello_of,
    _crypto,
    _initial,
    obfuscated2_preamble,
    openvpn_hard_reset,
    quic_initials,
    rtp,
    stun_binding_request,
    tls_client_hello,
    whatsapp_first_frame,
    wireguard_initiation,
)

TCP = FlowInfo("tcp", "10.77.0.2", 40123, "10.77.128.5", 443)
UDP = FlowInfo("udp", "10.77.0.2", 40123, "10.77.128.5", 443)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _seeds() -> list[bytes]:
    from dnslib import QTYPE, RR, A, DNSRecord

    query = DNSRecord.question("web.whatsapp.com", "A")
    reply = query.reply()
    reply.add_answer(RR("web.whatsapp.com", QTYPE.A, rdata=A("157.240.1.53")))
    dns = [query.pack(), reply.pack()]
    return [
        tls_client_hello("chat.signal.org", ["h2"]),
        *quic_initials("www.youtube.com", ["h3"]),
        *dns,
        struct.pack("!H", len(dns[0])) + dns[0],
        INVITE,
        RINGING,
        b"GET /x HTTP/1.1\r\nHost: a.example\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n\r\n",
        rtp(1),
        rtp(2),
        stun_binding_request(os.urandom(12)),
        b"\x16\xfe\xff" + bytes(8) + b"\x00\x0c\x01" + bytes(11),
        b"<stream:stream to='chat.example' xmlns='jabber:client'>",
        b"SSH-2.0-OpenSSH_9.2p1 Debian\r\n",
        openvpn_hard_reset(),
        wireguard_initiation(7),
        whatsapp_first_frame(),
        obfuscated2_preamble(),
    ]


SEEDS = _seeds()
ANALYZER_NAMES = names()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.sampled_from(["flip", "truncate", "concat", "insert", "byte"]))
        if op == "flip" and data:
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte" and data:
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        elif op == "truncate":
            data = data[: draw(st.integers(0, len(data)))]
        elif op == "concat":
            data += draw(st.sampled_from(SEEDS))
        elif op == "insert":
            i = draw(st.integers(0, len(data)))
            data[i:i] = draw(st.binary(max_size=16))
    return bytes(data)


@st.composite
def segmented(draw: st.DrawFn, packet: st.SearchStrategy[bytes]) -> list[tuple[bool, bytes]]:
    """A flow: packets, some cut into segments, with a direction each."""
    flow: list[tuple[bool, bytes]] = []
    for data in draw(st.lists(packet, min_size=1, max_size=5)):
        rev = draw(st.booleans())
        cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=3)))
        pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        flow.extend((rev, piece) for piece in pieces if piece)
    return flow


def _check_direct(info: FlowInfo, packets: list[tuple[bool, bytes]]) -> None:
    """Every analyzer's streams, called directly: no exception, well-formed results."""
    for name in ANALYZER_NAMES:
        analyzers = [get(name)]
        if name == "tls":
            analyzers.append(get("tls", reassemble=False))
        for analyzer in analyzers:
            stream = analyzer.new_stream(info)
            if stream is None:
                continue
            for rev, data in packets:
                update, done = stream.feed(rev, data)
                assert update is None or (
                    isinstance(update, dict) and all(isinstance(k, str) for k in update)
                ), (name, update)
                assert isinstance(done, bool), name
                if done:
                    break
            last = stream.close()
            assert last is None or isinstance(last, dict)


def _check_engine(info: FlowInfo, packets: list[tuple[bool, bytes]]) -> None:
    flow = FlowAnalysis([*ANALYZER_NAMES, get("tls", reassemble=False)], info)
    for rev, data in packets:
        flow.feed(rev, data)
    flow.close()
    assert flow.errors == []


any_packet = st.one_of(st.binary(max_size=1500), mutated())


@FUZZ
@given(st.sampled_from([TCP, UDP]), segmented(any_packet))
def test_no_analyzer_raises_on_random_or_mutated_flows(
    info: FlowInfo, packets: list[tuple[bool, bytes]]
) -> None:
    _check_direct(info, packets)
    _check_engine(info, packets)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([TCP, UDP]), st.lists(st.tuples(st.booleans(), mutated()), max_size=8))
def test_whole_mutated_packets_never_raise(
    info: FlowInfo, packets: list[tuple[bool, bytes]]
) -> None:
    _check_direct(info, packets)
    _check_engine(info, packets)


QUIC_DCID, QUIC_HELLO = _client_hello_of(quic_initials("www.youtube.com", ["h3"])[0])


@st.composite
def sealed_initial(draw: st.DrawFn) -> bytes:
    """A correctly encrypted Initial (sealed by aioquic) around arbitrary frames, so the
    frame parser and the ClientHello parser behind the AEAD get fuzzed too."""
    frames = b""
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["crypto", "raw", "mutated-hello"]))
        if kind == "raw":
            frames += draw(st.binary(max_size=64))
        else:
            hello = bytearray(QUIC_HELLO)
            if kind == "mutated-hello":
                for _ in range(draw(st.integers(1, 8))):
                    hello[draw(st.integers(0, len(hello) - 1))] = draw(st.integers(0, 255))
            start = draw(st.integers(0, len(hello)))
            end = draw(st.integers(start, len(hello)))
            frames += _crypto(start, bytes(hello[start:end]))
    return _initial(QUIC_DCID, frames[:1100], draw(st.integers(0, 3)))


@settings(max_examples=150, deadline=None)
@given(st.lists(sealed_initial(), min_size=1, max_size=4))
def test_quic_frames_behind_valid_encryption_never_raise(datagrams: list[bytes]) -> None:
    packets = [(False, d) for d in datagrams]
    _check_direct(UDP, packets)
    _check_engine(UDP, packets)


# -- Differential properties ------------------------------------------------------------------


def _reference_exempt(data: bytes, tls_max: int = 0x09) -> bool:
    """Algorithm 1 written as plainly as the paper states it (per-byte loops)."""
    printable = [0x20 <= b <= 0x7E for b in data]
    bits = sum(bin(b).count("1") for b in data) / len(data)
    run = best = 0
    for p in printable:
        run = run + 1 if p else 0
        best = max(best, run)
    tls = len(data) >= 3 and data[0] in (0x16, 0x17) and data[1] == 3 and data[2] <= tls_max
    http = data[:4] in (b"GET ", b"PUT ") or data[:5] in (b"POST ", b"HEAD ")
    return (
        bits <= 3.4
        or bits >= 4.6
        or (len(data) >= 6 and all(printable[:6]))
        or sum(printable) / len(data) > 0.5
        or best > 20
        or tls
        or http
    )


printable_heavy = st.binary(min_size=1, max_size=300) | st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=300
).map(lambda t: os.urandom(3) + t.encode())


@settings(max_examples=300, deadline=None)
@given(printable_heavy | mutated().filter(bool))
def test_fet_agrees_with_a_plain_reading_of_algorithm_1(data: bytes) -> None:
    props = evaluate(data)
    assert props["yes"] is not _reference_exempt(data)
    assert math.isclose(props["popcount"], sum(bin(b).count("1") for b in data) / len(data))


labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=20)


@settings(max_examples=100, deadline=None)
@given(st.lists(labels, min_size=1, max_size=5), st.sampled_from(["A", "AAAA", "MX", "TXT"]))
def test_dns_question_agrees_with_dnslib(parts: list[str], qtype: str) -> None:
    from dnslib import DNSRecord

    name = ".".join(parts)
    wire = DNSRecord.question(name, qtype).pack()
    props = FlowAnalysis(["dns"], UDP)
    props.feed(False, wire)
    assert props.props["dns"]["qname"] == name and props.props["dns"]["qtype"] == qtype


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 3), st.sampled_from(["BINDING", "ALLOCATE", "REFRESH", "CHANNEL_BIND"]))
def test_stun_type_decoding_agrees_with_aioice(klass: int, method: str) -> None:
    from aioice import stun

    classes = [stun.Class.REQUEST, stun.Class.INDICATION, stun.Class.RESPONSE, stun.Class.ERROR]
    message = stun.Message(stun.Method[method], classes[klass])
    props = FlowAnalysis(["stun"], UDP)
    props.feed(False, bytes(message))
    got = props.props["stun"]
    assert got["method"] == method.lower()
    assert got["class"] == ["request", "indication", "success", "error"][klass]


def test_empty_and_one_byte_payloads_fed_directly() -> None:
    for info in (TCP, UDP):
        for payload in (b"", b"\x00", b"\xff", b"W", b"G", b"S", b"<"):
            _check_direct(info, [(False, payload), (True, payload), (False, payload)])


def test_registry_is_what_the_fuzzers_covered() -> None:
    assert sorted(ANALYZERS) == ANALYZER_NAMES and len(ANALYZER_NAMES) == 15
