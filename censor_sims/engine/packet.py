"""IPv4/TCP/UDP headers: parse what the engine needs, build what it injects (RST, forged
UDP). Standard library only: this is the hot path, and scapy is far too slow for it."""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

TCP, UDP = 6, 17
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


@dataclass(frozen=True, slots=True)
class Packet:
    proto: int
    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes
    ttl: int = 64
    ip_id: int = 0
    seq: int = 0  # TCP only
    ack: int = 0
    flags: int = 0


def parse(raw: bytes) -> Packet | None:
    """None for anything that is not a well-formed IPv4 TCP/UDP packet (never raises)."""
    if len(raw) < 20 or raw[0] >> 4 != 4:
        return None
    ihl = (raw[0] & 0x0F) * 4
    total = struct.unpack_from("!H", raw, 2)[0]
    if ihl < 20 or total < ihl or len(raw) < ihl:
        return None
    raw = raw[: min(total, len(raw))]
    proto = raw[9]
    src, dst = socket.inet_ntoa(raw[12:16]), socket.inet_ntoa(raw[16:20])
    ttl, ip_id = raw[8], struct.unpack_from("!H", raw, 4)[0]
    body = raw[ihl:]
    if proto == TCP and len(body) >= 20:
        sport, dport, seq, ack, off_flags = struct.unpack_from("!HHIIH", body)
        off = (off_flags >> 12) * 4
        if off < 20 or off > len(body):
            return None
        return Packet(TCP, src, dst, sport, dport, body[off:], ttl, ip_id, seq, ack,
                      off_flags & 0x3F)  # fmt: skip
    if proto == UDP and len(body) >= 8:
        sport, dport, length = struct.unpack_from("!HHH", body)
        end = min(max(length, 8), len(body))
        return Packet(UDP, src, dst, sport, dport, body[8:end], ttl, ip_id)
    return None


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _ip_header(src: str, dst: str, proto: int, length: int, ttl: int, ip_id: int) -> bytes:
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + length, ip_id, 0x4000, ttl, proto, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))  # fmt: skip
    return header[:10] + struct.pack("!H", _checksum(header)) + header[12:]


def _pseudo(src: str, dst: str, proto: int, length: int) -> bytes:
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, length)


def build_tcp(
    src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
    ttl: int = 64, ip_id: int = 0, window: int = 0, payload: bytes = b"",
) -> bytes:  # fmt: skip
    segment = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, window, 0, 0)
    segment += payload
    csum = _checksum(_pseudo(src, dst, TCP, len(segment)) + segment)
    segment = segment[:16] + struct.pack("!H", csum) + segment[18:]
    return _ip_header(src, dst, TCP, len(segment), ttl, ip_id) + segment


def build_udp(
    src: str, dst: str, sport: int, dport: int, payload: bytes, ttl: int = 64, ip_id: int = 0
) -> bytes:
    length = 8 + len(payload)
    datagram = struct.pack("!HHHH", sport, dport, length, 0) + payload
    csum = _checksum(_pseudo(src, dst, UDP, length) + datagram) or 0xFFFF
    datagram = datagram[:6] + struct.pack("!H", csum) + datagram[8:]
    return _ip_header(src, dst, UDP, length, ttl, ip_id) + datagram


def rst_pair(pkt: Packet) -> list[bytes]:
    """RSTs that tear a TCP connection down at both ends, as on-path censors inject them:
    one to the receiver of `pkt` (spoofed from its sender) and one back to its sender.

    `pkt` itself is dropped, so the receiver still expects `pkt.seq`: a RST with exactly
    that sequence number is accepted (RFC 5961 answers any other one with a challenge ACK
    and the server would keep a half-open connection)."""
    seq_after = (pkt.seq + len(pkt.payload) + (1 if pkt.flags & (SYN | FIN) else 0)) % 2**32
    to_receiver = build_tcp(pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.seq, 0, RST)
    to_sender = build_tcp(pkt.dst, pkt.src, pkt.dport, pkt.sport, pkt.ack, seq_after,
                          RST | ACK)  # fmt: skip
    return [to_receiver, to_sender]


class RawSender:
    """Sends whole IPv4 packets we built (IP_HDRINCL) from the censor's namespace."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def send(self, raw: bytes) -> None:
        dst = socket.inet_ntoa(raw[16:20])
        self.sock.sendto(raw, (dst, 0))

    def close(self) -> None:
        self.sock.close()
