"""UDPGW framing (badvpn's udpgw protocol as Psiphon uses it, psiphon/server/udp.go): UDP
datagrams multiplexed over one TCP port-forward to the magic address 127.0.0.1:7300.

Frame: [size u16 LE][flags u8][conn id u16 LE][IPv4 4 | IPv6 16][port u16 BE][payload];
size counts everything after itself. Flags: 1 keepalive, 2 rebind, 4 DNS, 8 IPv6.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

MAGIC_HOST = "127.0.0.1"
MAGIC_PORT = 7300
FLAG_KEEPALIVE = 1
FLAG_REBIND = 2
FLAG_DNS = 4
FLAG_IPV6 = 8
MAX_PAYLOAD = 32768


class UdpgwError(ValueError):
    """A malformed frame: the channel is closed (udp.go readUdpgwMessage)."""


@dataclass(frozen=True)
class Frame:
    conn_id: int
    host: str
    port: int
    payload: bytes
    flags: int = 0


def encode(frame: Frame) -> bytes:
    ip = ipaddress.ip_address(frame.host)
    flags = frame.flags | (FLAG_IPV6 if ip.version == 6 else 0)
    if len(frame.payload) > MAX_PAYLOAD:
        raise UdpgwError("payload too large")
    body = struct.pack("<BH", flags, frame.conn_id) + ip.packed + struct.pack("!H", frame.port)
    body += frame.payload
    return struct.pack("<H", len(body)) + body


def keepalive(conn_id: int = 0) -> bytes:
    return struct.pack("<HBH", 3, FLAG_KEEPALIVE, conn_id)


class Decoder:
    """Stream-to-frames: feed whatever the channel delivered, get the complete frames.
    Keepalives are dropped, as the server does."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        frames = []
        while len(self._buf) >= 2:
            (size,) = struct.unpack_from("<H", self._buf)
            if size < 3 or size > MAX_PAYLOAD + 21:
                raise UdpgwError(f"invalid udpgw message size {size}")
            if len(self._buf) < 2 + size:
                break
            body = bytes(self._buf[2 : 2 + size])
            del self._buf[: 2 + size]
            flags, conn_id = struct.unpack_from("<BH", body)
            if flags & FLAG_KEEPALIVE:
                continue
            alen = 16 if flags & FLAG_IPV6 else 4
            if size < 3 + alen + 2:
                raise UdpgwError(f"invalid udpgw message size {size}")
            host = str(ipaddress.ip_address(body[3 : 3 + alen]))
            (port,) = struct.unpack_from("!H", body, 3 + alen)
            frames.append(Frame(conn_id, host, port, body[5 + alen :], flags))
        return frames
