"""Where the caller's TCP connections go: straight out, or through the tool's SOCKS5.

aioice opens its TURN-over-TCP/TLS connections with `loop.create_connection(host, port,
ssl=True)` and has no proxy setting; websockets has its own. Rather than patching either,
the caller runs on an event loop whose `create_connection` sends every outgoing TCP
connection through SOCKS5 CONNECT when a proxy is given (what a system-wide proxy setting
or proxychains does), and turns `ssl=True` into a context that trusts the run's CA (aioice
verifies `turns:` certificates and fails silently on an untrusted one).

UDP: when the tool relays UDP, TURN over UDP (aioice's one `create_datagram_endpoint` with a
`remote_addr`) goes through SOCKS5 UDP ASSOCIATE. Host and srflx candidates cannot: aioice
binds and answers on its own sockets, so their connectivity checks always go direct.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
from typing import Any

from harness.net.socks5 import (
    CMD_CONNECT,
    ProxyAddress,
    UdpAssociation,
    _negotiate,
    _request,
)


async def socks_socket(proxy: ProxyAddress, host: str, port: int, timeout: float) -> socket.socket:
    """A TCP socket already CONNECTed to host:port through the proxy (ready for TLS)."""

    async def go() -> socket.socket:
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        try:
            await _negotiate(reader, writer, proxy)
            await _request(reader, writer, CMD_CONNECT, host, port)
            raw = writer.get_extra_info("socket")
            # The proxy sends nothing before we speak, so no byte is left in `reader`.
            return socket.socket(fileno=os.dup(raw.fileno()))
        finally:
            writer.transport.abort()  # closes our fd only: the dup keeps the connection

    return await asyncio.wait_for(go(), timeout)


class SocksDatagramTransport(asyncio.DatagramTransport):
    """A connected datagram transport whose packets go through a SOCKS5 UDP association."""

    def __init__(self, association: UdpAssociation, remote: tuple[str, int], protocol: Any) -> None:
        super().__init__()
        self.association, self.remote, self.protocol = association, remote, protocol
        self.closing = False

    def sendto(self, data: Any, addr: Any = None) -> None:
        if not self.closing:
            self.association.sendto(bytes(data), addr or self.remote)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.association.close()
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def abort(self) -> None:
        self.close()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self.remote
        if name == "sockname":
            return self.association.sockname
        return default


class CallerLoop(asyncio.SelectorEventLoop):
    """An event loop that routes outgoing TCP through SOCKS5 and trusts the run's CA."""

    proxy: ProxyAddress | None = None
    proxy_udp: bool = False  # the proxy relays UDP (UDP ASSOCIATE)
    ca_file: str | None = None
    connect_timeout: float = 10.0
    via: list[str] = []  # "host:port" of every connection sent through the proxy

    def trust(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)

    async def create_connection(  # type: ignore[override]
        self, protocol_factory: Any, host: str | None = None, port: int | None = None, **kw: Any
    ) -> Any:
        if kw.get("ssl") is True and self.ca_file:
            kw["ssl"] = self.trust()
        direct = self.proxy is None or kw.get("sock") is not None or host is None
        if direct or (host, port) == (self.proxy.host, self.proxy.port):
            return await super().create_connection(protocol_factory, host, port, **kw)
        sock = await socks_socket(self.proxy, host, port, self.connect_timeout)
        self.via = [*self.via, f"{host}:{port}"]
        if kw.get("ssl") and not kw.get("server_hostname"):
            kw["server_hostname"] = host
        kw.pop("family", None)
        kw.pop("local_addr", None)
        return await super().create_connection(protocol_factory, sock=sock, **kw)

    async def create_datagram_endpoint(  # type: ignore[override]
        self, protocol_factory: Any, local_addr: Any = None, remote_addr: Any = None, **kw: Any
    ) -> Any:
        proxy = self.proxy
        if (
            proxy is None
            or not self.proxy_udp
            or remote_addr is None
            or remote_addr[0] == proxy.host
        ):
            # (the association's own socket to the relay on the proxy's address goes here)
            return await super().create_datagram_endpoint(
                protocol_factory, local_addr, remote_addr, **kw
            )
        protocol = protocol_factory()
        association = await UdpAssociation.open(
            proxy, lambda data, addr: protocol.datagram_received(data, addr), self.connect_timeout
        )
        transport = SocksDatagramTransport(association, tuple(remote_addr), protocol)
        protocol.connection_made(transport)
        self.via = [*self.via, f"udp:{remote_addr[0]}:{remote_addr[1]}"]
        return transport, protocol


def new_loop(proxy: ProxyAddress | None, ca_file: str | None, udp: bool = False) -> CallerLoop:
    loop = CallerLoop()
    loop.proxy, loop.ca_file, loop.proxy_udp = proxy, ca_file, udp
    return loop
