"""`signal-like`: Signal's chat connection, a WebSocket over TLS 443 to a chat.signal.org-
style name of the run zone.

Sources: signalapp/Signal-TLS-Proxy `data/nginx-relay/nginx.conf` (the service names that
appear as SNI on 443: chat.signal.org, storage., cdn., cdsi., sfu.voip.signal.org) and
signalapp/libsignal-service-java `WebSocketConnection` (wss://chat.signal.org/v1/websocket/,
every message a request answered by a response carrying the same id, kept alive while the
app is open). The TLS handshake is Python's OpenSSL one, not Signal's (Android's BoringSSL or
Rust's rustls in libsignal): a censor keying on the SNI sees the same name, one keying on
the JA3/JA4 fingerprint would not see Signal's. The server certificate comes from the run
CA and is verified against the name, as Signal pins its own CA.

Inside the WebSocket the messages are our JSON (binary frames), not Signal's
WebSocketMessage protobuf with sealed-sender envelopes: invisible under TLS either way.
"""

from __future__ import annotations

import argparse
import socket
import ssl

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import Server, ServerConnection
from websockets.asyncio.server import serve as ws_serve

from harness.apps.messengers.app import MessengerApp
from harness.apps.messengers.session import ChannelHandler
from harness.topology.base import fqdn
from harness.trial import TrialContext

PATH = "/v1/websocket/"
USER_AGENT = "Signal-Android/7.30.0 Android/34"


class WebSocketChannel:
    """One WebSocket binary frame per message."""

    def __init__(self, ws: ClientConnection | ServerConnection) -> None:
        self.ws = ws

    async def send(self, data: bytes) -> None:
        await self.ws.send(data)

    async def recv(self) -> bytes:
        data = await self.ws.recv()
        return data if isinstance(data, bytes) else data.encode()

    async def close(self) -> None:
        await self.ws.close()


async def client_handshake(sock: socket.socket, args: argparse.Namespace) -> WebSocketChannel:
    """TLS (SNI = --sni, certificate checked against it) then the WebSocket upgrade."""
    name = args.sni or args.server
    context = ssl.create_default_context(cafile=args.ca)
    ws = await connect(
        f"wss://{name}{PATH}",
        sock=sock,
        ssl=context,
        server_hostname=name,
        proxy=None,  # never a proxy from the environment: --socks is the only way out
        compression=None,
        user_agent_header=USER_AGENT,
        open_timeout=None,  # the caller's deadline bounds the handshake
        ping_interval=None,
    )
    return WebSocketChannel(ws)


async def serve(args: argparse.Namespace, on_channel: ChannelHandler) -> Server:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)

    async def handler(ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path.split("?")[0] != PATH:
            await ws.close(1008, "unknown path")
            return
        await on_channel(WebSocketChannel(ws))

    return await ws_serve(
        handler, args.listen, args.port, ssl=context, compression=None, ping_interval=None
    )


class SignalLikeApp(MessengerApp):
    name = "signal-like"
    profile = "signal-like"
    options_field = "signal_like"

    def server_name(self, ctx: TrialContext) -> str:
        return self.options(ctx).server_name or fqdn("chat")

    def server_args(self, ctx: TrialContext) -> list[str]:
        chat = ctx.topology["chat"]
        name = self.server_name(ctx)
        cert, key = ctx.ca.issue("signal-like", [name], [chat.addr], out_dir=ctx.dir)
        return ["--cert", str(cert), "--key", str(key)]

    def client_args(self, ctx: TrialContext) -> list[str]:
        name = self.server_name(ctx)
        tls = ["--sni", name, "--ca", str(ctx.ca.cert_path)]
        if name in ctx.topology.names():
            return [*self.by_name(ctx, name), *tls]
        # A name the run zone does not hold: reach chat by address, the name is the SNI.
        return ["--server", ctx.topology.addr("chat"), *tls]
