"""End-to-end tunnel probe, run inside the client host: a DNS query over TCP through the
tool's SOCKS5 port, retried until it answers or time runs out. Prints one JSON result."""

from __future__ import annotations

import argparse
import asyncio
import struct
import time

from dnslib import DNSRecord

from harness.agent_io import emit
from harness.net.socks5 import ProxyAddress, open_connection


async def _once(proxy: ProxyAddress, host: str, port: int) -> None:
    reader, writer = await open_connection(proxy, host, port, timeout=2.0)
    try:
        query = DNSRecord.question("dns.gatecrash.test", "A").pack()
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 2.0))
        DNSRecord.parse(await asyncio.wait_for(reader.readexactly(length), 2.0))
    finally:
        writer.close()


async def probe(socks: str, target: str, timeout: float) -> dict:
    proxy = ProxyAddress.parse(socks)
    host, _, port = target.rpartition(":")
    start = time.monotonic()
    error = "timeout"
    while time.monotonic() - start < timeout:
        try:
            await _once(proxy, host, int(port))
            return {"event": "result", "ok": True, "ms": (time.monotonic() - start) * 1000}
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.02)
    return {"event": "result", "ok": False, "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--socks", required=True, help="host:port of the SOCKS5 server")
    parser.add_argument("--target", required=True, help="host:port of a DNS server (TCP)")
    parser.add_argument("--timeout", type=float, default=5.0)
    args = parser.parse_args()
    emit(asyncio.run(probe(args.socks, args.target, args.timeout)))


if __name__ == "__main__":
    main()
