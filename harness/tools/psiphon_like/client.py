"""OSSH client: sends the seed message, runs an asyncssh client over the obfuscated stream,
and serves SOCKS5 on a local port. TCP goes over direct-tcpip channels; UDP rides one UDPGW
channel to 127.0.0.1:7300 (as Psiphon's tun2socks does, psiphon/server/udp.go). Prints
{"event": "ready", "socks": ...} once the SSH session is authenticated and SOCKS listens."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable

import asyncssh

from harness.agent_io import emit
from harness.tools.psiphon_like import obfuscator, udpgw
from harness.tools.psiphon_like.bridge import bridge
from harness.tools.psiphon_like.socks_server import Socks5Server, UdpRelay

CONNECT_TIMEOUT = 15.0
_BRIDGES: set[asyncio.Task] = set()


def log(event: str, **fields: object) -> None:
    emit({"event": event, **fields})


class UdpgwChannel:
    """The single UDPGW channel: (relay, destination) pairs get conn ids; replies go back to
    the relay that sent to that destination."""

    def __init__(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn
        self._writer: asyncssh.SSHWriter | None = None
        self._opening: asyncio.Task | None = None
        self._ids: dict[tuple[int, str, int], int] = {}
        self._routes: dict[int, UdpRelay] = {}
        self._next = 1
        self._pending: list[bytes] = []

    def send(self, relay: UdpRelay, host: str, port: int, payload: bytes) -> None:
        key = (id(relay), host, port)
        conn_id = self._ids.get(key)
        if conn_id is None:
            if len(self._routes) >= 0xFFFF:
                return  # every conn id in use: drop, as udpgw has no error reply
            while self._next in self._routes:
                self._next = self._next % 0xFFFF + 1
            conn_id = self._ids[key] = self._next
            self._next = self._next % 0xFFFF + 1
            self._routes[conn_id] = relay
        frame = udpgw.encode(udpgw.Frame(conn_id, host, port, payload))
        if self._writer is not None:
            self._writer.write(frame)
            return
        self._pending.append(frame)
        if self._opening is None:
            self._opening = asyncio.create_task(self._open())

    def release(self, relay: UdpRelay) -> None:
        """The association ended: its conn ids may be reused."""
        for key in [k for k in self._ids if k[0] == id(relay)]:
            self._routes.pop(self._ids.pop(key), None)

    async def _open(self) -> None:
        try:
            reader, writer = await self.conn.open_connection(udpgw.MAGIC_HOST, udpgw.MAGIC_PORT)
        except (asyncssh.Error, OSError) as exc:
            log("udpgw-error", error=str(exc))
            self._opening, self._pending = None, []
            return
        for frame in self._pending:
            writer.write(frame)
        self._pending.clear()
        self._writer = writer
        decoder = udpgw.Decoder()
        try:
            while data := await reader.read(65536):
                for frame in decoder.feed(data):
                    relay = self._routes.get(frame.conn_id)
                    if relay is not None:
                        relay.deliver(frame.host, frame.port, frame.payload)
        except (asyncssh.Error, OSError, udpgw.UdpgwError) as exc:
            log("udpgw-error", error=str(exc))
        finally:
            self._writer, self._opening = None, None


Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]
Dialer = Callable[[], Awaitable[Streams]]
# Seed-message padding, fewest and most bytes: Psiphon's client sends 32..8192.
Padding = tuple[int, int]
DEFAULT_PADDING: Padding = (obfuscator.MIN_CLIENT_PADDING, obfuscator.MAX_PADDING)


def add_padding_args(parser: argparse.ArgumentParser) -> None:
    """--padding-min / --padding-max, the range of the seed message's random padding."""
    parser.add_argument("--padding-min", type=int, default=DEFAULT_PADDING[0])
    parser.add_argument("--padding-max", type=int, default=DEFAULT_PADDING[1])


def padding_bytes(padding: Padding) -> bytes:
    low, high = padding
    return os.urandom(low + secrets.randbelow(high - low + 1))


def tcp_dialer(server: str) -> Dialer:
    """Plain OSSH: the obfuscated stream is the TCP connection itself."""
    host, _, port = server.rpartition(":")
    return lambda: asyncio.open_connection(host.strip("[]"), int(port))


async def connect(server: str, keyword: str, password: str) -> asyncssh.SSHClientConnection:
    """OSSH + SSH up to authentication, over TCP to `server` (IP:PORT)."""
    return await connect_over(tcp_dialer(server), keyword, password)


async def connect_over(
    dial: Dialer, keyword: str, password: str, padding: Padding = DEFAULT_PADDING
) -> asyncssh.SSHClientConnection:
    """OSSH + SSH up to authentication over whatever byte stream `dial` opens (TCP, TLS,
    meek): the variants differ only in the carrier."""
    reader, writer = await dial()
    preamble, session = obfuscator.client_preamble(
        keyword.encode(), padding=padding_bytes(padding), pad_kex=True
    )
    writer.write(preamble)
    sock, pumps = await bridge(reader, writer, session)
    _BRIDGES.add(pumps)  # asyncio holds tasks weakly: an unreferenced one may be collected
    pumps.add_done_callback(_BRIDGES.discard)
    session_id = secrets.token_hex(16)
    creds = json.dumps({"SessionId": session_id, "SshPassword": password})
    return await asyncssh.connect(
        "ossh",  # unused: the tunnel hands asyncssh its socket
        tunnel=_SocketTunnel(sock),
        config=None,
        username=session_id,
        password=creds,
        known_hosts=None,  # Psiphon pins the host key from its server entry; we trust any
        client_keys=None,
        keepalive_interval=30,
        connect_timeout=CONNECT_TIMEOUT,
    )


class _SocketTunnel:
    """asyncssh's `tunnel=` hook: the SSH client runs on our bridged socket (run_client would
    do, but it insists on a TCP peer name, which a socketpair has not)."""

    def __init__(self, sock) -> None:
        self.sock = sock

    async def create_connection(self, factory, host: str, port: int):
        return await asyncio.get_running_loop().create_connection(factory, sock=self.sock)


async def run(
    server: str | Dialer,
    keyword: str,
    password: str,
    socks: str,
    padding: Padding = DEFAULT_PADDING,
) -> None:
    """Connect (over TCP to `server`, or over the stream a variant's dialer opens), then serve
    SOCKS5 until the SSH connection ends."""
    start = time.monotonic()
    dial = tcp_dialer(server) if isinstance(server, str) else server
    try:
        conn = await asyncio.wait_for(
            connect_over(dial, keyword, password, padding), CONNECT_TIMEOUT
        )
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        # A wrong keyword looks like this too: the server never answers (probe resistance).
        log("error", error=f"{type(exc).__name__}: {exc}")
        sys.exit(1)
    channel = UdpgwChannel(conn)
    socks_server = Socks5Server(conn.open_connection, channel.send, channel.release)
    host, _, port = socks.rpartition(":")
    tcp = await asyncio.start_server(socks_server.handle, host.strip("[]"), int(port))
    bound = tcp.sockets[0].getsockname()
    log(
        "ready", socks=f"{bound[0]}:{bound[1]}", setup_ms=round((time.monotonic() - start) * 1e3, 1)
    )
    async with tcp:
        await conn.wait_closed()
    log("closed")
    sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", required=True, help="IP:PORT of the OSSH server")
    parser.add_argument("--keyword", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--socks", default="127.0.0.1:1080", help="local SOCKS5 listen address")
    add_padding_args(parser)
    args = parser.parse_args()
    padding = (args.padding_min, args.padding_max)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args.server, args.keyword, args.password, args.socks, padding))


if __name__ == "__main__":
    main()
