"""OSSH server: validates the client's seed message, then runs an asyncssh server over the
de-obfuscated stream. Password auth carries the session id (Psiphon's SSH password is JSON
{"SessionId", "SshPassword"}, psiphon/server/tunnelServer.go); direct-tcpip goes anywhere, and
forwards to 127.0.0.1:7300 are answered by a UDPGW relay (psiphon/server/udp.go).

A connection whose seed message fails (wrong keyword, replay, not OSSH at all) gets no answer:
the server reads and discards until the peer gives up, as README.obfuscation prescribes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import socket
import sys

import asyncssh

from harness.agent_io import emit
from harness.tools.psiphon_like import obfuscator, udpgw
from harness.tools.psiphon_like.bridge import bridge

HANDSHAKE_TIMEOUT = 30.0  # server-side connection establishment timeout
DISCARD_TIMEOUT = 60.0


def log(event: str, **fields: object) -> None:
    emit({"event": event, **fields})


class UdpgwRelay(asyncssh.SSHTCPSession[bytes]):
    """One UDPGW channel: a connected UDP socket per conn id, replies framed back."""

    def __init__(self) -> None:
        self._decoder = udpgw.Decoder()
        self._socks: dict[int, tuple[socket.socket, udpgw.Frame]] = {}
        self._chan: asyncssh.SSHTCPChannel | None = None

    def connection_made(self, chan: asyncssh.SSHTCPChannel) -> None:
        self._chan = chan

    def data_received(self, data: bytes, datatype: object) -> None:
        try:
            frames = self._decoder.feed(data)
        except udpgw.UdpgwError as exc:
            log("udpgw-error", error=str(exc))
            self._chan.close()
            return
        for frame in frames:
            self._send(frame)

    def _send(self, frame: udpgw.Frame) -> None:
        entry = self._socks.get(frame.conn_id)
        if entry is not None and (frame.flags & udpgw.FLAG_REBIND):
            self._drop(frame.conn_id)
            entry = None
        if entry is not None and (entry[1].host, entry[1].port) != (frame.host, frame.port):
            return  # udp.go: remote address mismatch, message dropped
        if entry is None:
            family = socket.AF_INET6 if ":" in frame.host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_DGRAM)
            sock.setblocking(False)
            try:
                sock.connect((frame.host, frame.port))
            except OSError:
                sock.close()
                return
            entry = (sock, frame)
            self._socks[frame.conn_id] = entry
            asyncio.get_running_loop().add_reader(sock, self._on_reply, frame.conn_id)
        with contextlib.suppress(OSError):
            entry[0].send(frame.payload)

    def _on_reply(self, conn_id: int) -> None:
        sock, first = self._socks[conn_id]
        try:
            payload = sock.recv(udpgw.MAX_PAYLOAD)
        except BlockingIOError:
            return
        except OSError:
            self._drop(conn_id)
            return
        if self._chan is not None:
            self._chan.write(udpgw.encode(udpgw.Frame(conn_id, first.host, first.port, payload)))

    def _drop(self, conn_id: int) -> None:
        sock, _ = self._socks.pop(conn_id)
        asyncio.get_running_loop().remove_reader(sock)
        sock.close()

    def connection_lost(self, exc: Exception | None) -> None:
        for conn_id in list(self._socks):
            self._drop(conn_id)


class SshServer(asyncssh.SSHServer):
    def __init__(self, password: str, peer: str) -> None:
        self.password, self.peer, self.session_id = password, peer, ""

    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        try:
            creds = json.loads(password)
            session_id, secret = str(creds["SessionId"]), str(creds["SshPassword"])
        except (ValueError, KeyError, TypeError):
            return False
        ok = hmac.compare_digest(secret.encode(), self.password.encode())
        if ok:
            self.session_id = session_id
            log("session", peer=self.peer, session_id=session_id)
        return ok

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str, orig_port: int):
        if (dest_host, dest_port) == (udpgw.MAGIC_HOST, udpgw.MAGIC_PORT):
            log("udpgw", peer=self.peer, session_id=self.session_id)
            return UdpgwRelay()
        return True  # asyncssh opens the TCP connection itself

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False


class OsshServer:
    def __init__(self, keyword: str, password: str) -> None:
        self.keyword = keyword.encode()
        self.password = password
        self.history = obfuscator.SeedHistory()
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")

    async def handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str | None = None
    ) -> None:
        """One OSSH connection on any stream (TCP, TLS, a meek session); `peer` is the client
        IP for the seed history, by default the stream's peer address."""
        if peer is None:
            peer = writer.get_extra_info("peername")[0]
        try:
            await self._handle(reader, writer, peer)
        except Exception as exc:
            log("error", peer=peer, error=f"{type(exc).__name__}: {exc}")
        finally:
            writer.close()

    async def _handle(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, peer: str
    ) -> None:
        try:
            header = await asyncio.wait_for(
                reader.readexactly(obfuscator.HEADER_LENGTH), HANDSHAKE_TIMEOUT
            )
            session, padding_length = obfuscator.server_accept(
                header, self.keyword, peer, self.history, pad_kex=True
            )
        except obfuscator.Rejected as exc:
            log("rejected", peer=peer, reason=str(exc))
            await self._discard(reader)
            return
        except (TimeoutError, asyncio.IncompleteReadError):
            return
        padding = await asyncio.wait_for(reader.readexactly(padding_length), HANDSHAKE_TIMEOUT)
        session.c2s.cipher.apply(padding)
        writer.write(session.outgoing(obfuscator.server_padding_lines()))
        sock, pumps = await bridge(reader, writer, session)
        ssh = SshServer(self.password, peer)
        conn = await asyncssh.run_server(
            sock,
            server_factory=lambda: ssh,
            server_host_keys=[self.host_key],
            login_timeout=HANDSHAKE_TIMEOUT,
            keepalive_interval=30,
        )
        await conn.wait_closed()
        log("closed", peer=peer, session_id=ssh.session_id)
        pumps.cancel()

    async def _discard(self, reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(DISCARD_TIMEOUT):
                while await reader.read(65536):
                    pass


async def serve(listen: str, keyword: str, password: str) -> None:
    host, _, port = listen.rpartition(":")
    server = OsshServer(keyword, password)
    tcp = await asyncio.start_server(server.handle, host.strip("[]"), int(port))
    log("listening", listen=listen)
    async with tcp:
        await tcp.serve_forever()


def serve_main(serve_fn, description: str, listen_help: str = "IP:PORT") -> None:
    """The command line every OSSH server front (plain, TLS, meek) shares."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--listen", required=True, help=listen_help)
    parser.add_argument("--keyword", required=True, help="OSSH obfuscation keyword")
    parser.add_argument("--password", required=True, help="SSH password")
    args = parser.parse_args()
    if not args.keyword:
        sys.exit("missing keyword")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_fn(args.listen, args.keyword, args.password))


def main() -> None:
    serve_main(serve, __doc__)


if __name__ == "__main__":
    main()
