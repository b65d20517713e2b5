"""Benchmark (not a test): packets per second through the analyzers' `classify()`.

    .venv/bin/python benchmarks/censor_analyzers.py [--seconds 1.0]

Each sample is a one-packet flow (new streams, one feed, close), the worst case of the
engine's queued path, where every flow's first packets are analyzed: a TLS ClientHello
(Python's ssl), a QUIC Initial (aioquic, decrypted), a DNS query (dnslib) and an RTP packet.
Measured twice: with the one analyzer that protocol needs, and with all of them (what an
engine would do if a rule set referenced every analyzer). The engine's target is >= 50k
packets/s through the whole queued path; this is the analyzers' share of it.
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import struct
import time

from censor_sims.analyzers import FlowInfo, classify, get, names

TCP = FlowInfo("tcp", "10.77.0.2", 40123, "10.77.128.5", 443)
UDP = FlowInfo("udp", "10.77.0.2", 40123, "10.77.128.5", 443)


def tls_client_hello() -> bytes:
    out = ssl.MemoryBIO()
    conn = ssl.create_default_context().wrap_bio(
        ssl.MemoryBIO(), out, server_hostname="chat.signal.org"
    )
    with contextlib.suppress(ssl.SSLWantReadError):
        conn.do_handshake()
    return out.read()


def quic_initial() -> bytes:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection

    config = QuicConfiguration(is_client=True, server_name="www.youtube.com", alpn_protocols=["h3"])
    connection = QuicConnection(configuration=config)
    connection.connect(("10.77.128.5", 443), now=time.time())
    return connection.datagrams_to_send(now=time.time())[0][0]


def dns_query() -> bytes:
    from dnslib import DNSRecord

    return DNSRecord.question("web.whatsapp.com", "A").pack()


def rtp_packet() -> bytes:
    return struct.pack("!BBHII", 0x80, 0, 1, 160, 0x1234ABCD) + bytes(160)


def rate(analyzers: list, info: FlowInfo, packet: bytes, seconds: float) -> float:
    packets = [(False, packet)]
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            classify(analyzers, info, packets)
        count += 100
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    args = parser.parse_args()
    every = [get(name) for name in names()]
    samples = [
        ("TLS ClientHello", "tls", TCP, tls_client_hello()),
        ("QUIC Initial", "quic", UDP, quic_initial()),
        ("DNS query", "dns", UDP, dns_query()),
        ("RTP packet", "rtp", UDP, rtp_packet()),
    ]
    print(f"classify() of a one-packet flow, {args.seconds:.1f} s per figure")
    print(f"{'packet':18s} {'bytes':>6s} {'own analyzer':>16s} {'all ' + str(len(every)):>16s}")
    for label, own, info, packet in samples:
        alone = rate([get(own)], info, packet, args.seconds)
        together = rate(every, info, packet, args.seconds)
        print(f"{label:18s} {len(packet):6d} {alone:12,.0f} pps {together:12,.0f} pps")
    # RTP needs three packets before it says yes: the cost of a whole decision.
    flow = [(False, struct.pack("!BBHII", 0x80, 0, i, 160 * i, 7) + bytes(160)) for i in range(3)]
    rtp = get("rtp")
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < args.seconds:
        for _ in range(100):
            classify([rtp], UDP, flow)
        n += 100
    elapsed = time.perf_counter() - start
    print(f"{'RTP, 3-packet flow':18s} {'':6s} {3 * n / elapsed:12,.0f} pps (to rtp.yes)")


if __name__ == "__main__":
    main()
