"""SIP transports of the UA: UDP (direct, or SOCKS5 UDP ASSOCIATE) and TCP (direct, or
SOCKS5 CONNECT), framed by Content-Length on the stream (RFC 3261 18.3).

Requests always go to one next hop, the registrar/proxy (an outbound proxy, as a UA behind
a NAT or a tool is configured). Responses go back the way the request came: on UDP to its
source address (RFC 3581 rport behaviour), on TCP over the same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from harness.apps.sip.message import SipMessage, SipParseError, StreamFramer, parse
from harness.net import socks5

log = logging.getLogger("sip.transport")

Address = tuple[str, int]


@dataclass
class Inbound:
    """A received message, its network source and the way to answer it."""

    message: SipMessage
    source: Address
    reply: Callable[[bytes], None]


Deliver = Callable[[Inbound], None]
Fail = Callable[[BaseException], None]


class Transport:
    """Common interface: `send` a request to the proxy, inbound messages to `deliver`,
    transport-level failures (reset, ICMP unreachable) to `fail`."""

    name = ""
    reliable = False

    def __init__(self, deliver: Deliver, fail: Fail) -> None:
        self.deliver, self.fail = deliver, fail
        self.local: Address = ("0.0.0.0", 0)  # sent-by and Contact host:port
        self.via = "direct"  # path: direct | socks-udp | socks-tcp

    def send(self, data: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _dispatch(self, data: bytes, source: Address, reply: Callable[[bytes], None]) -> None:
        try:
            msg = parse(data)
        except SipParseError as exc:
            log.warning("unparsable message from %s:%s: %s", *source, exc)
            return
        log.info("<- %s:%s %s", *source, msg.summary())
        self.deliver(Inbound(msg, source, reply))


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: UdpTransport) -> None:
        self.owner = owner

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.owner.on_datagram(data, addr)

    def error_received(self, exc: Exception) -> None:
        # Only a connected socket reports ICMP errors: the proxy's port is closed, or a
        # censor rejects the datagram with an ICMP unreachable.
        self.owner.fail(exc)


class UdpTransport(Transport):
    name = "UDP"

    def __init__(self, deliver: Deliver, fail: Fail) -> None:
        super().__init__(deliver, fail)
        self.proxy: Address = ("0.0.0.0", 0)
        self._sock: asyncio.DatagramTransport | None = None
        self._assoc: socks5.UdpAssociation | None = None
        self._connected = False

    @classmethod
    async def open(
        cls,
        bind_ip: str,
        proxy: Address,
        deliver: Deliver,
        fail: Fail,
        socks: socks5.ProxyAddress | None = None,
        connect: bool = False,
        timeout: float = 10.0,
    ) -> UdpTransport:
        """`connect`: talk only to the proxy, so that ICMP errors reach us (a client);
        a callee leaves it unconnected. `socks`: relay through UDP ASSOCIATE."""
        self = cls(deliver, fail)
        self.proxy = proxy
        if socks is not None:
            self._assoc = await socks5.UdpAssociation.open(socks, self.on_datagram, timeout)
            self.local = (bind_ip, self._assoc.sockname[1])
            self.via = "socks-udp"
        else:
            loop = asyncio.get_running_loop()
            self._sock, _ = await loop.create_datagram_endpoint(
                lambda: _UdpProtocol(self),
                local_addr=(bind_ip, 0),
                remote_addr=proxy if connect else None,
            )
            self._connected = connect
            self.local = self._sock.get_extra_info("sockname")[:2]
        return self

    def _sendto(self, data: bytes, dest: Address) -> None:
        if self._assoc is not None:
            self._assoc.sendto(data, dest)
        elif self._sock is not None:
            self._sock.sendto(data, None if self._connected else dest)

    def send(self, data: bytes) -> None:
        self._sendto(data, self.proxy)

    def on_datagram(self, data: bytes, source: Address) -> None:
        if not data.strip(b"\r\n\x00"):
            return  # keep-alive
        self._dispatch(data, source, lambda out: self._sendto(out, source))

    def close(self) -> None:
        if self._assoc is not None:
            self._assoc.close()
        if self._sock is not None:
            self._sock.close()


class _Connection:
    """One TCP connection: reads framed messages until EOF or error."""

    def __init__(
        self,
        owner: TcpTransport,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_close: Callable[[BaseException], None] | None,
    ) -> None:
        self.owner, self.reader, self.writer = owner, reader, writer
        self.peer: Address = writer.get_extra_info("peername")[:2]
        self.on_close = on_close
        self.task = asyncio.get_running_loop().create_task(self._read())

    def write(self, data: bytes) -> None:
        if self.writer.is_closing():
            raise ConnectionResetError("SIP connection is closed")
        self.writer.write(data)

    async def _read(self) -> None:
        framer = StreamFramer()
        why: BaseException
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    why = ConnectionResetError("SIP connection closed by peer (FIN)")
                    break
                for raw in framer.feed(data):
                    self.owner._dispatch(raw, self.peer, self.write)
        except asyncio.CancelledError:
            raise
        except (OSError, SipParseError) as exc:
            why = exc
        self.writer.close()
        if self.on_close is not None:
            self.on_close(why)

    def close(self) -> None:
        self.task.cancel()
        self.writer.close()


class TcpTransport(Transport):
    name = "TCP"
    reliable = True

    def __init__(self, deliver: Deliver, fail: Fail) -> None:
        super().__init__(deliver, fail)
        self._out: _Connection | None = None
        self._server: asyncio.Server | None = None
        self._accepted: list[_Connection] = []

    @classmethod
    async def open(
        cls,
        bind_ip: str,
        proxy: Address,
        deliver: Deliver,
        fail: Fail,
        socks: socks5.ProxyAddress | None = None,
        listen: bool = False,
        timeout: float = 10.0,
    ) -> TcpTransport:
        """Connect to the proxy (through CONNECT when `socks`); with `listen`, also accept
        connections on `bind_ip` (a callee: the proxy opens one to deliver the INVITE to
        the registered Contact)."""
        self = cls(deliver, fail)
        if socks is not None:
            reader, writer = await socks5.open_connection(socks, *proxy, timeout=timeout)
            self.via = "socks-tcp"
        else:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(*proxy, local_addr=(bind_ip, 0)), timeout
            )
        self._out = _Connection(self, reader, writer, self.fail)
        self.local = (bind_ip, writer.get_extra_info("sockname")[1])
        if listen:
            self._server = await asyncio.start_server(self._accept, bind_ip, 0)
            self.local = (bind_ip, self._server.sockets[0].getsockname()[1])
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._accepted.append(_Connection(self, reader, writer, None))

    def send(self, data: bytes) -> None:
        if self._out is None:
            raise ConnectionResetError("not connected")
        self._out.write(data)

    def close(self) -> None:
        for conn in [*self._accepted, *([self._out] if self._out else [])]:
            with contextlib.suppress(Exception):
                conn.close()
        if self._server is not None:
            self._server.close()
