"""Minimal asyncio SOCKS5 client (RFC 1928): CONNECT for TCP, UDP ASSOCIATE for UDP.

The built-in apps speak SOCKS5 themselves so that a tool's client side is used exactly as a
real app would use it: TCP signalling through CONNECT, RTP through UDP ASSOCIATE.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass

VERSION = 5
CMD_CONNECT = 1
CMD_UDP_ASSOCIATE = 3
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 1, 3, 4

REPLY_TEXT = {
    1: "general SOCKS server failure",
    2: "connection not allowed by ruleset",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}


class Socks5Error(ConnectionError):
    """The proxy refused or failed a request; `code` is the RFC 1928 reply code (0 if none)."""

    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ProxyAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, text: str) -> ProxyAddress:
        """Parse `host:port` or `user:pass@host:port`."""
        creds, _, hostport = text.rpartition("@")
        host, _, port = hostport.rpartition(":")
        user, pw = [*creds.split(":", 1), ""][:2] if creds else (None, None)
        return cls(host.strip("[]"), int(port), user, pw)


def encode_address(host: str, port: int) -> bytes:
    """ATYP + address + port, as in requests and UDP datagram headers."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        name = host.encode("idna")
        return bytes([ATYP_DOMAIN, len(name)]) + name + struct.pack("!H", port)
    atyp = ATYP_IPV4 if ip.version == 4 else ATYP_IPV6
    return bytes([atyp]) + ip.packed + struct.pack("!H", port)


def decode_address(data: bytes, offset: int = 0) -> tuple[str, int, int]:
    """Return (host, port, offset after the address)."""
    atyp = data[offset]
    offset += 1
    if atyp == ATYP_IPV4:
        host = str(ipaddress.IPv4Address(data[offset : offset + 4]))
        offset += 4
    elif atyp == ATYP_IPV6:
        host = str(ipaddress.IPv6Address(data[offset : offset + 16]))
        offset += 16
    elif atyp == ATYP_DOMAIN:
        length = data[offset]
        host = data[offset + 1 : offset + 1 + length].decode("idna")
        offset += 1 + length
    else:
        raise Socks5Error(f"unknown address type {atyp}")
    (port,) = struct.unpack("!H", data[offset : offset + 2])
    return host, port, offset + 2


async def _negotiate(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proxy: ProxyAddress
) -> None:
    methods = b"\x00\x02" if proxy.username is not None else b"\x00"
    writer.write(bytes([VERSION, len(methods)]) + methods)
    await writer.drain()
    ver, method = await reader.readexactly(2)
    if ver != VERSION:
        raise Socks5Error(f"not a SOCKS5 server (version byte {ver})")
    if method == 0x02:
        user = (proxy.username or "").encode()
        pw = (proxy.password or "").encode()
        writer.write(bytes([1, len(user)]) + user + bytes([len(pw)]) + pw)
        await writer.drain()
        _, status = await reader.readexactly(2)
        if status != 0:
            raise Socks5Error("username/password authentication failed")
    elif method != 0x00:
        raise Socks5Error("proxy accepts none of our authentication methods")


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, cmd: int, host: str, port: int
) -> tuple[str, int]:
    writer.write(bytes([VERSION, cmd, 0]) + encode_address(host, port))
    await writer.drain()
    head = await reader.readexactly(4)
    if head[1] != 0:
        raise Socks5Error(REPLY_TEXT.get(head[1], f"reply code {head[1]}"), head[1])
    atyp = head[3]
    if atyp == ATYP_IPV4:
        rest = await reader.readexactly(4 + 2)
    elif atyp == ATYP_IPV6:
        rest = await reader.readexactly(16 + 2)
    else:
        length = (await reader.readexactly(1))[0]
        rest = bytes([length]) + await reader.readexactly(length + 2)
    bound_host, bound_port, _ = decode_address(bytes([atyp]) + rest)
    return bound_host, bound_port


async def open_connection(
    proxy: ProxyAddress, host: str, port: int, timeout: float = 10.0
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """TCP stream to host:port through the proxy (CONNECT)."""

    async def go() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        try:
            await _negotiate(reader, writer, proxy)
            await _request(reader, writer, CMD_CONNECT, host, port)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    return await asyncio.wait_for(go(), timeout)


def wrap_datagram(data: bytes, addr: tuple[str, int]) -> bytes:
    """RSV(2) FRAG(1) ATYP ADDR PORT DATA: a datagram for the relay to send to `addr`."""
    return b"\x00\x00\x00" + encode_address(*addr) + data


def unwrap_datagram(data: bytes) -> tuple[bytes, tuple[str, int]] | None:
    """(payload, origin) of a datagram from the relay; None if malformed or a fragment
    (fragments are not supported: FRAG must be 0)."""
    if len(data) < 4 or data[2] != 0:
        return None
    try:
        host, port, offset = decode_address(data, 3)
    except (Socks5Error, IndexError, struct.error, UnicodeError):
        return None
    return data[offset:], (host, port)


async def udp_associate(
    proxy: ProxyAddress, timeout: float = 10.0
) -> tuple[asyncio.StreamWriter, tuple[str, int]]:
    """UDP ASSOCIATE: (control connection, relay address). The association lives as long
    as the control connection: keep the writer open, close it to end the association.
    For callers that run their own UDP socket (e.g. to read kernel receive timestamps)."""
    writer: asyncio.StreamWriter | None = None

    async def go() -> tuple[asyncio.StreamWriter, tuple[str, int]]:
        nonlocal writer
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        await _negotiate(reader, writer, proxy)
        host, port = await _request(reader, writer, CMD_UDP_ASSOCIATE, "0.0.0.0", 0)
        if host in ("0.0.0.0", "::"):
            # Unspecified relay address: the relay is on the proxy's own address.
            host = proxy.host
        return writer, (host, port)

    try:
        return await asyncio.wait_for(go(), timeout)
    except BaseException:
        if writer is not None:
            writer.close()
        raise


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, on_datagram: Callable[[bytes, tuple[str, int]], None]) -> None:
        self.on_datagram = on_datagram

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        unwrapped = unwrap_datagram(data)
        if unwrapped is not None:
            self.on_datagram(*unwrapped)


class UdpAssociation:
    """A UDP relay obtained with UDP ASSOCIATE; lives as long as its control connection."""

    def __init__(self) -> None:
        self._control: asyncio.StreamWriter | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self.relay: tuple[str, int] | None = None

    @classmethod
    async def open(
        cls,
        proxy: ProxyAddress,
        on_datagram: Callable[[bytes, tuple[str, int]], None],
        timeout: float = 10.0,
    ) -> UdpAssociation:
        self = cls()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        self._control, self.relay = await udp_associate(proxy, timeout)
        try:
            family = socket.AF_INET6 if ":" in self.relay[0] else socket.AF_INET
            self._transport, _ = await asyncio.wait_for(
                loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(on_datagram), remote_addr=self.relay, family=family
                ),
                max(deadline - loop.time(), 0.1),
            )
        except BaseException:
            self.close()
            raise
        return self

    @property
    def sockname(self) -> tuple[str, int]:
        """Local address of our socket towards the relay (what we would advertise)."""
        assert self._transport is not None, "association is not open"
        return self._transport.get_extra_info("sockname")[:2]

    def sendto(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self._transport is not None, "association is not open"
        self._transport.sendto(wrap_datagram(data, addr))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()
        if self._control is not None:
            self._control.close()
