"""The client side of the cases, run inside the client namespace (`python -m
harness.reproduce.client conns|tls ...`); prints one JSON document.

`conns` runs a schedule of TCP connections (or UDP exchanges) to echo servers, each
starting at its own offset and sending its payloads one segment at a time (waiting for each
echo), so a case can time a violation and its probes against each other in one process.
`tls` does a real TLS handshake (Python ssl over a socket it writes itself, so the
ClientHello can be split over two TCP segments or follow a prepended packet) and times a
download or an upload."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import ssl
import sys
import time
from typing import Any

from harness.agent_io import emit


async def _udp(job: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Datagrams `gap` s apart from one socket; which of them came back within `timeout`."""
    loop = asyncio.get_running_loop()
    payloads = [bytes.fromhex(p) for p in job["payloads"]]
    back: set[bytes] = set()

    class Proto(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
            back.add(data)

    local = ("0.0.0.0", job["sport"]) if job.get("sport") else None
    transport, _ = await loop.create_datagram_endpoint(
        Proto, local_addr=local, remote_addr=(job["host"], job["port"])
    )
    for payload in payloads:
        transport.sendto(payload)
        await asyncio.sleep(job.get("gap", 0.02))
    await asyncio.sleep(job.get("timeout", 1.0))
    transport.close()
    echoed = [p in back for p in payloads]
    outcome = "ok" if all(echoed) else ("timeout" if not any(echoed) else "partial")
    return {**result, "outcome": outcome, "echoed": echoed}


async def _one(job: dict[str, Any], t0: float) -> dict[str, Any]:
    due = job["at_abs"] if "at_abs" in job else t0 + job.get("at", 0.0)
    await asyncio.sleep(max(0.0, due - time.time()))
    started = time.time()
    timeout = job.get("timeout", 1.5)
    result = {"id": job.get("id"), "port": job["port"], "host": job["host"], "started": started}
    if job.get("proto") == "udp":
        return await _udp(job, result)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(job["host"], job["port"]), timeout
        )
    except TimeoutError:
        return {**result, "outcome": "connect-timeout"}
    except OSError as exc:
        return {**result, "outcome": type(exc).__name__}
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    outcome = "ok"
    try:
        for payload in map(bytes.fromhex, job["payloads"]):
            writer.write(payload)
            await writer.drain()
            await asyncio.wait_for(reader.readexactly(len(payload)), timeout)
    except TimeoutError:
        outcome = "timeout"
    except (OSError, asyncio.IncompleteReadError) as exc:
        outcome = type(exc).__name__
    finally:
        writer.close()
    return {**result, "outcome": outcome, "elapsed": time.time() - started}


async def _conns(jobs: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    gate = asyncio.Semaphore(limit)
    t0 = time.time()

    async def bounded(job: dict[str, Any]) -> dict[str, Any]:
        async with gate:
            return await _one(job, t0)

    return list(await asyncio.gather(*(bounded(j) for j in jobs)))


def _pump(sock: socket.socket, tls: ssl.SSLObject, out: ssl.MemoryBIO, inc: ssl.MemoryBIO,
          step) -> Any:  # fmt: skip
    """Run `step` until it stops wanting to read, shuttling bytes over the socket."""
    while True:
        try:
            result = step()
        except ssl.SSLWantReadError:
            if data := out.read():
                sock.sendall(data)
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionResetError("server closed") from None
            inc.write(chunk)
            continue
        if data := out.read():
            sock.sendall(data)
        return result


def tls_transfer(host: str, port: int, sni: str, mode: str, size: int, upload: bool,
                 timeout: float, prepend: int = 200) -> dict[str, Any]:  # fmt: skip
    """Handshake with `sni`, then download (or upload) `size` bytes; goodput in bit/s."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(inc, out, server_hostname=sni)
    sock = socket.create_connection((host, port), timeout)
    sock.settimeout(timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "prepend":  # a packet before the ClientHello; the server skips it
        sock.sendall(b"\x00" + prepend.to_bytes(2, "big") + os.urandom(prepend))
        time.sleep(0.05)
    with contextlib.suppress(ssl.SSLWantReadError):
        tls.do_handshake()
    hello = out.read()
    if mode == "split":  # two TCP segments, cut inside the client random (before the SNI)
        sock.sendall(hello[:32])
        time.sleep(0.05)
        sock.sendall(hello[32:])
    else:
        sock.sendall(hello)
    _pump(sock, tls, out, inc, tls.do_handshake)
    started = time.time()
    if upload:
        tls.write(f"PUT {size}\n".encode())
        blob = os.urandom(16384)
        sent = 0
        while sent < size:
            sent += tls.write(blob[: min(len(blob), size - sent)])
            sock.sendall(out.read())
        reply = _pump(sock, tls, out, inc, lambda: tls.read(64))
        moved = int(reply.split()[1]) if reply.startswith(b"OK") else 0
    else:
        tls.write(f"GET {size}\n".encode())
        sock.sendall(out.read())
        moved = 0
        while moved < size:
            moved += len(_pump(sock, tls, out, inc, lambda: tls.read(65536)))
    seconds = time.time() - started
    sock.close()
    return {"sni": sni, "mode": mode, "bytes": moved, "seconds": seconds,
            "bps": moved * 8 / seconds if seconds > 0 else 0.0}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(prog="harness.reproduce.client")
    sub = parser.add_subparsers(dest="cmd", required=True)
    conns = sub.add_parser("conns", help="a JSON list of connection jobs on stdin")
    conns.add_argument("--limit", type=int, default=32, help="connections at once")
    tls = sub.add_parser("tls")
    tls.add_argument("host")
    tls.add_argument("port", type=int)
    tls.add_argument("sni")
    tls.add_argument("--mode", choices=["plain", "split", "prepend"], default="plain")
    tls.add_argument("--size", type=int, default=50_000)
    tls.add_argument("--upload", action="store_true")
    tls.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    if args.cmd == "conns":
        emit(asyncio.run(_conns(json.load(sys.stdin), args.limit)))
        return
    try:
        result = tls_transfer(args.host, args.port, args.sni, args.mode, args.size, args.upload,
                              args.timeout)  # fmt: skip
    except (OSError, ssl.SSLError) as exc:
        result = {"sni": args.sni, "mode": args.mode, "error": f"{type(exc).__name__}: {exc}"}
    emit(result)


if __name__ == "__main__":
    main()
