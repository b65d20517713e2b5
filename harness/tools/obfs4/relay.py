"""The obfs4 client-side relay: a plain SOCKS5 server (CONNECT) for the app that chains two
SOCKS5 hops, because obfs4 itself only reaches its bridge:

    app --SOCKS5--> relay --SOCKS5 (user "cert=...;iat-mode=0", password NUL, CONNECT bridge)-->
    obfs4proxy client ==obfs4==> bridge --> microsocks at the ORPORT --CONNECT dest--> dest

Tor does the same with its own SOCKS client; without Tor something has to speak both hops.
UDP ASSOCIATE is answered with 0x07 (command not supported): obfs4 carries TCP only.
"""

from __future__ import annotations

import argparse
import asyncio

from harness.agent_io import emit
from harness.net.socks5 import CMD_CONNECT, ProxyAddress, _negotiate, _request, open_connection
from harness.tools.psiphon_like.socks_server import Socks5Server

PT_PASSWORD = "\0"  # Tor PT 1.0 §3.5: args that fit in the username leave a single NUL


def chained_opener(pt_socks: str, pt_args: str, bridge: str):
    pt = ProxyAddress.parse(pt_socks)
    pt = ProxyAddress(pt.host, pt.port, pt_args, PT_PASSWORD)
    bridge_host, _, bridge_port = bridge.rpartition(":")

    async def open_tcp(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await open_connection(pt, bridge_host, int(bridge_port), timeout=10)
        try:  # the second hop: microsocks behind the bridge
            await asyncio.wait_for(_negotiate(reader, writer, ProxyAddress("", 0)), 10)
            await asyncio.wait_for(_request(reader, writer, CMD_CONNECT, host, port), 10)
        except BaseException:
            writer.close()
            raise
        return reader, writer

    return open_tcp


async def serve(listen: str, pt_socks: str, pt_args: str, bridge: str) -> None:
    host, _, port = listen.rpartition(":")
    socks = Socks5Server(chained_opener(pt_socks, pt_args, bridge))
    server = await asyncio.start_server(socks.handle, host, int(port))
    emit({"event": "ready", "socks": listen})
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="host:port of the app-facing SOCKS5")
    parser.add_argument("--pt-socks", required=True, help="obfs4proxy's CMETHOD address")
    parser.add_argument("--pt-args", required=True, help="bridge args, e.g. cert=...;iat-mode=0")
    parser.add_argument("--bridge", required=True, help="host:port of the obfs4 bridge")
    args = parser.parse_args()
    asyncio.run(serve(args.listen, args.pt_socks, args.pt_args, args.bridge))


if __name__ == "__main__":
    main()
