"""A UDP/TCP echo server and client for reachability checks across the censor and tools.

`serve` echoes every datagram and stream; `udp` / `tcp` send `count` probes and print one
JSON line with how many came back, so a test can tell "blocked" from "reset" from "works".
"""

from __future__ import annotations

import argparse
import asyncio
import time

from harness.agent_io import emit
from harness.net.socks5 import ProxyAddress, UdpAssociation, open_connection


class UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.transport.sendto(data, addr)  # type: ignore[attr-defined]


async def tcp_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(UdpEcho, local_addr=(host, port))
    server = await asyncio.start_server(tcp_echo, host, port)
    emit({"event": "ready", "port": port})
    async with server:
        await server.serve_forever()


async def udp_probe(host: str, port: int, count: int, wait: float, socks: str | None) -> dict:
    loop = asyncio.get_running_loop()
    got: set[int] = set()

    def on_reply(data: bytes, addr: object = None) -> None:
        if data.startswith(b"gc-echo-"):
            got.add(int(data[8:]))

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            on_reply(data)

    if socks:
        assoc = await UdpAssociation.open(ProxyAddress.parse(socks), on_reply)
        send = lambda payload: assoc.sendto(payload, (host, port))  # noqa: E731
        close = assoc.close
    else:
        transport, _ = await loop.create_datagram_endpoint(Proto, remote_addr=(host, port))
        send, close = transport.sendto, transport.close
    for i in range(count):
        send(b"gc-echo-%d" % i)
        await asyncio.sleep(0.01)
    deadline = time.monotonic() + wait
    while len(got) < count and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    close()
    return {"event": "result", "proto": "udp", "sent": count, "received": len(got)}


async def tcp_probe(host: str, port: int, wait: float, socks: str | None) -> dict:
    start = time.monotonic()
    try:
        if socks:
            reader, writer = await open_connection(ProxyAddress.parse(socks), host, port, wait)
        else:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), wait)
        writer.write(b"gc-echo-tcp")
        data = await asyncio.wait_for(reader.readexactly(11), wait)
        writer.close()
        ok = data == b"gc-echo-tcp"
        return {"event": "result", "proto": "tcp", "ok": ok, "outcome": "ok" if ok else "error",
                "ms": round((time.monotonic() - start) * 1000, 2)}  # fmt: skip
    except ConnectionResetError as exc:
        return {
            "event": "result",
            "proto": "tcp",
            "ok": False,
            "outcome": "reset",
            "error": str(exc),
        }
    except ConnectionRefusedError as exc:
        return {"event": "result", "proto": "tcp", "ok": False, "outcome": "refused",
                "error": str(exc)}  # fmt: skip
    except (TimeoutError, asyncio.IncompleteReadError) as exc:
        return {"event": "result", "proto": "tcp", "ok": False, "outcome": "timeout",
                "error": repr(exc)}  # fmt: skip
    except OSError as exc:
        return {"event": "result", "proto": "tcp", "ok": False, "outcome": "error",
                "error": str(exc)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--host", required=True)
    s.add_argument("--port", type=int, default=7)
    for name in ("udp", "tcp"):
        p = sub.add_parser(name)
        p.add_argument("--host", required=True)
        p.add_argument("--port", type=int, default=7)
        p.add_argument("--count", type=int, default=10)
        p.add_argument("--wait", type=float, default=2.0)
        p.add_argument("--socks", help="host:port of a SOCKS5 proxy to go through")
    args = parser.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args.host, args.port))
    elif args.cmd == "udp":
        result = asyncio.run(udp_probe(args.host, args.port, args.count, args.wait, args.socks))
        emit(result)
    else:
        emit(asyncio.run(tcp_probe(args.host, args.port, args.wait, args.socks)))


if __name__ == "__main__":
    main()
