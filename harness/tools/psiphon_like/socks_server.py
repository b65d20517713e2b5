"""The client's local SOCKS5 server (RFC 1928, no auth): CONNECT becomes an SSH direct-tcpip
channel, UDP ASSOCIATE a relay socket whose datagrams ride the one UDPGW channel."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import Awaitable, Callable

from harness.net.socks5 import (
    ATYP_DOMAIN,
    ATYP_IPV4,
    ATYP_IPV6,
    CMD_CONNECT,
    CMD_UDP_ASSOCIATE,
    VERSION,
    decode_address,
    encode_address,
    unwrap_datagram,
    wrap_datagram,
)

Opener = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
UdpSend = Callable[["UdpRelay", str, int, bytes], None]
UdpRelease = Callable[["UdpRelay"], None]


async def _read_command(reader: asyncio.StreamReader) -> tuple[int, str, int]:
    _ver, cmd, _, atyp = await reader.readexactly(4)
    if atyp == ATYP_IPV4:
        rest = await reader.readexactly(6)
    elif atyp == ATYP_IPV6:
        rest = await reader.readexactly(18)
    elif atyp == ATYP_DOMAIN:
        n = (await reader.readexactly(1))[0]
        rest = bytes([n]) + await reader.readexactly(n + 2)
    else:
        raise ConnectionError(f"unknown address type {atyp}")
    host, port, _ = decode_address(bytes([atyp]) + rest)
    return cmd, host, port


def reply(code: int, host: str = "0.0.0.0", port: int = 0) -> bytes:
    return bytes([VERSION, code, 0]) + encode_address(host, port)


class UdpRelay(asyncio.DatagramProtocol):
    """One association's relay socket; the app's address is learned from its datagrams."""

    def __init__(self, send: UdpSend) -> None:
        self.send = send
        self.app: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        unwrapped = unwrap_datagram(data)
        if unwrapped is None:
            return
        payload, (host, port) = unwrapped
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return  # UDPGW carries addresses only
        self.app = addr[:2]
        self.send(self, host, port, payload)

    def deliver(self, host: str, port: int, payload: bytes) -> None:
        if self.transport is not None and self.app is not None:
            self.transport.sendto(wrap_datagram(payload, (host, port)), self.app)


async def _splice(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
    try:
        while data := await src.read(65536):
            dst.write(data)
            await dst.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if dst.can_write_eof():
                dst.write_eof()  # half-close: the other direction may still be sending
            else:
                dst.close()


class Socks5Server:
    def __init__(
        self,
        open_tcp: Opener,
        udp_send: UdpSend | None = None,
        udp_release: UdpRelease | None = None,
    ) -> None:
        self.open_tcp, self.udp_send, self.udp_release = open_tcp, udp_send, udp_release

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            ver, nmethods = await reader.readexactly(2)
            methods = await reader.readexactly(nmethods)
            if ver != VERSION or 0 not in methods:
                writer.write(b"\x05\xff")
                return
            writer.write(b"\x05\x00")
            cmd, host, port = await _read_command(reader)
            if cmd == CMD_CONNECT:
                await self._connect(reader, writer, host, port)
            elif cmd == CMD_UDP_ASSOCIATE and self.udp_send is not None:
                await self._associate(reader, writer)
            else:
                writer.write(reply(7))
        except (ConnectionError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _connect(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, port: int
    ) -> None:
        try:
            up_reader, up_writer = await self.open_tcp(host, port)
        except Exception:
            writer.write(reply(5))
            return
        writer.write(reply(0))
        await writer.drain()
        await asyncio.gather(_splice(reader, up_writer), _splice(up_reader, writer))
        up_writer.close()

    async def _associate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self.udp_send is not None
        local = writer.get_extra_info("sockname")[0]
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in local else socket.AF_INET
        send = self.udp_send
        transport, relay = await loop.create_datagram_endpoint(
            lambda: UdpRelay(send), local_addr=(local, 0), family=family
        )
        try:
            host, port = transport.get_extra_info("sockname")[:2]
            writer.write(reply(0, host, port))
            await writer.drain()
            while await reader.read(4096):  # the association lives as long as this connection
                pass
        finally:
            transport.close()
            relay.transport = None
            if self.udp_release is not None:
                self.udp_release(relay)
