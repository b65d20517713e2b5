"""The signalling server: a WebSocket over TLS relaying JSON messages between two peers.

Run outside: `python -m harness.apps.webrtc.signalling --bind IP --port 443 --cert C --key K`.
It relays every text message to every other connected peer (offer, answer, bye, stats),
answers {"type": "error"} when nobody else is connected, and prints {"event": "ready"} once
it listens. Like a messenger's call signalling, it is plain HTTPS-looking TLS on 443 with an
SNI of the service's name; a censor can block it by SNI, IP or port.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import ssl
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from harness.agent_io import emit

PATH = "/signal"


class Relay:
    def __init__(self) -> None:
        self.peers: set[ServerConnection] = set()
        self.relayed = 0

    async def handle(self, ws: ServerConnection) -> None:
        self.peers.add(ws)
        try:
            async for message in ws:
                others = [p for p in self.peers if p is not ws]
                if not others:
                    await ws.send(json.dumps({"type": "error", "error": "no peer connected"}))
                    continue
                for peer in others:
                    try:
                        await peer.send(message)
                        self.relayed += 1
                    except ConnectionClosed:
                        pass
        except ConnectionClosed:
            pass
        finally:
            self.peers.discard(ws)


async def serve_forever(args: argparse.Namespace) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    relay = Relay()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    async with serve(relay.handle, args.bind, args.port, ssl=context, compression=None):
        emit({"event": "ready", "port": args.port})
        await stop.wait()
    emit({"event": "stopped", "relayed": relay.relayed})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="harness.apps.webrtc.signalling", description=__doc__)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    asyncio.run(serve_forever(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
