"""The engine's packet path without a kernel queue: packets built here go through
`Engine.on_packet` via a stand-in for netfilterqueue's packet (named FakeQueuedPacket)."""

from __future__ import annotations

import socket
import struct

from dnslib import DNSRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from censor_sims.engine import verdicts
from censor_sims.engine.engine import Engine
from censor_sims.engine.packet import RST, SYN, TCP, UDP, build_tcp, build_udp, parse, rst_pair
from censor_sims.events import EventLog
from censor_sims.techniques.dpi_block import DpiBlock
from censor_sims.techniques.sni_filter import SniFilter


class FakeQueuedPacket:
    """Stand-in for netfilterqueue.Packet: records the verdict the engine gives."""

    def __init__(self, raw: bytes) -> None:
        self.raw, self.verdict, self.mark = raw, None, 0

    def get_payload(self) -> bytes:
        return self.raw

    def accept(self) -> None:
        self.verdict = "accept"

    def repeat(self) -> None:
        self.verdict = "repeat"

    def set_mark(self, mark: int) -> None:
        self.mark = mark


class RecordingSender:
    """Keeps injected packets instead of sending them: unit tests run in the host's
    namespace, where no packet of ours may go out."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, raw: bytes) -> None:
        self.sent.append(raw)


def _verify_l4_checksum(raw: bytes) -> bool:
    ihl = (raw[0] & 0x0F) * 4
    body = raw[ihl:]
    pseudo = raw[12:20] + struct.pack("!BBH", 0, raw[9], len(body))
    data = pseudo + body + (b"\0" if len(body) % 2 else b"")
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_built_packets_parse_back_with_valid_checksums() -> None:
    udp = build_udp("10.0.0.1", "10.0.0.2", 5353, 53, b"hello")
    pkt = parse(udp)
    assert pkt and (pkt.proto, pkt.sport, pkt.dport, pkt.payload) == (UDP, 5353, 53, b"hello")
    assert _verify_l4_checksum(udp)
    tcp = build_tcp("10.0.0.1", "10.0.0.2", 40000, 443, 1000, 0, SYN)
    assert _verify_l4_checksum(tcp) and parse(tcp).flags == SYN


def test_rst_pair_targets_both_ends_with_acceptable_sequence_numbers() -> None:
    data = build_tcp("10.0.0.1", "10.0.0.2", 40000, 443, 5000, 9000, 0x18)
    trigger = parse(data + b"")
    to_server, to_client = (parse(p) for p in rst_pair(trigger))
    assert (to_server.src, to_server.dst, to_server.seq) == ("10.0.0.1", "10.0.0.2", 5000)
    assert (to_client.src, to_client.dst, to_client.seq) == ("10.0.0.2", "10.0.0.1", 9000)
    assert to_server.flags & RST and to_client.flags & RST


def test_dpi_block_decides_once_and_marks_the_flow(tmp_path) -> None:
    engine = Engine(
        [DpiBlock(protocols=["sip"], action="drop")],
        EventLog(tmp_path / "e.jsonl"),
        sender=RecordingSender(),
    )
    invite = b"REGISTER sip:voip.test SIP/2.0\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n\r\n"
    first = FakeQueuedPacket(build_udp("10.0.0.10", "10.0.1.10", 5060, 5060, invite))
    engine.on_packet(first)
    again = FakeQueuedPacket(build_udp("10.0.0.10", "10.0.1.10", 5060, 5060, invite))
    engine.on_packet(again)
    assert first.verdict == again.verdict == "repeat"
    assert first.mark == again.mark == verdicts.mark(verdicts.DROP)
    decisions = [e for e in engine.log.read() if e["action"] == "drop"]
    assert len(decisions) == 1 and decisions[0]["analyzer"]["sip"]["method"] == "REGISTER"


def test_undecided_flow_is_accepted_and_dns_is_not_sip(tmp_path) -> None:
    engine = Engine(
        [DpiBlock(protocols=["sip"])], EventLog(tmp_path / "e.jsonl"), sender=RecordingSender()
    )
    query = DNSRecord.question("voip.gatecrash.test").pack()
    pkt = FakeQueuedPacket(build_udp("10.0.0.10", "10.0.1.53", 40000, 53, query))
    engine.on_packet(pkt)
    assert pkt.mark in (0, verdicts.mark(verdicts.PASS))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 1))
def test_no_packet_crashes_the_engine(tmp_path_factory, blob: bytes, as_tcp: int) -> None:
    log = EventLog(tmp_path_factory.mktemp("fuzz") / "e.jsonl")
    engine = Engine([SniFilter(names=["x.test"]), DpiBlock(protocols=["sip", "rtp", "stun"])],
                    log, sender=RecordingSender())  # fmt: skip
    raws = [blob]
    if as_tcp:
        raws.append(build_tcp("10.0.0.1", "10.0.0.2", 1, 443, 1, 0, 0x18)[:40] + blob)
    else:
        raws.append(build_udp("10.0.0.1", "10.0.0.2", 1, 5060, blob))
    for raw in raws:
        pkt = FakeQueuedPacket(raw)
        engine.on_packet(pkt)
        assert pkt.verdict in ("accept", "repeat")
    assert engine.stats["errors"] == 0, log.read()


def test_tcp_constant_and_socket_module_agree() -> None:
    assert socket.IPPROTO_TCP == TCP and socket.IPPROTO_UDP == UDP
