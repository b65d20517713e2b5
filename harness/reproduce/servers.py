"""Servers of the cases, run in outside namespaces (`python -m harness.reproduce.servers`).

`echo` echoes TCP and UDP on many ports from one process (a case that must not let one blocked
3-tuple's residual penalty touch the next connection gives each its own port). `tls` serves
`GET n` (n random bytes) and `PUT n` (reads n bytes, answers `OK n`) over TLS, one thread per
connection, and skips a prepended non-TLS packet (first byte 0x00, two length bytes)."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import ssl
import threading

from harness.agent_io import emit
from harness.net.echo import UdpEcho, tcp_echo


async def echo(host: str, ports: list[int]) -> None:
    """TCP and UDP echo on every port."""
    loop = asyncio.get_running_loop()
    for p in ports:
        await loop.create_datagram_endpoint(UdpEcho, local_addr=(host, p))
    servers = [await asyncio.start_server(tcp_echo, host, p) for p in ports]
    emit({"event": "ready", "ports": len(servers)})
    await asyncio.gather(*(s.serve_forever() for s in servers))


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionResetError("client closed")
        buf += chunk
    return buf


def _serve_tls(conn: socket.socket, ctx: ssl.SSLContext) -> None:
    try:
        conn.settimeout(60)
        if conn.recv(1, socket.MSG_PEEK) == b"\x00":
            _recv_exact(conn, int.from_bytes(_recv_exact(conn, 3)[1:], "big"))
        with ctx.wrap_socket(conn, server_side=True) as tls:
            line = b""
            while not line.endswith(b"\n"):
                line += tls.recv(1)
            verb, size = line.split()
            n = int(size)
            if verb == b"GET":
                blob = os.urandom(16384)
                sent = 0
                while sent < n:
                    sent += tls.send(blob[: min(len(blob), n - sent)])
            else:
                got = 0
                while got < n:
                    chunk = tls.recv(65536)
                    if not chunk:
                        break
                    got += len(chunk)
                tls.sendall(f"OK {got}\n".encode())
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        conn.close()


def tls_server(host: str, port: int, cert: str, key: str) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    listener = socket.create_server((host, port), backlog=64)
    emit({"event": "ready", "port": port})
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=_serve_tls, args=(conn, ctx), daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(prog="harness.reproduce.servers")
    sub = parser.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("--host", required=True)
    e.add_argument("--ports", required=True, help="comma list and ranges: 22,80,7000-7199")
    t = sub.add_parser("tls")
    t.add_argument("--host", required=True)
    t.add_argument("--port", type=int, default=443)
    t.add_argument("--cert", required=True)
    t.add_argument("--key", required=True)
    args = parser.parse_args()
    if args.cmd == "echo":
        asyncio.run(echo(args.host, parse_ports(args.ports)))
    else:
        tls_server(args.host, args.port, args.cert, args.key)


def parse_ports(text: str) -> list[int]:
    ports: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        ports.extend(range(int(lo), int(hi or lo) + 1))
    return ports


if __name__ == "__main__":
    main()
