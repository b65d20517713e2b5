"""`telegram-like`: MTProto's obfuscated2 transport straight to a data-centre IP.

Source: tdlib (tdlib/td) `td/mtproto/TcpTransport.cpp`, `ObfuscatedTransport::init` and
`td/mtproto/TcpTransport.h`; the same derivation in MTProxy `net/net-tcp-rpc-ext-server.c`.
The client draws 64 random bytes, redrawing while byte 0 is 0xef, the first little-endian
dword is "HEAD", "POST", "GET ", "OPTI", 0xdddddddd, 0xeeeeeeee or 0x02010316, or the second
dword is 0. Bytes 56-60 become the framing tag (0xeeeeeeee intermediate, 0xefefefef
abridged), 60-62 the data-centre id (int16 little-endian). The client's AES-256-CTR key
and IV are bytes 8-40 and 40-56; the server's are the same 48 bytes reversed. The preamble
goes out with bytes 56-64 replaced by their encryption under the client's stream, and
everything after continues that stream. No DNS and no TLS: Telegram apps ship the
data-centre addresses, so the client connects to a fixed IP.

The first framed message is an unencrypted req_pq_multi, answered by resPQ, as when tdlib
creates an auth key: that round trip is the connect. Differences from the real app, none
visible outside the obfuscation: the later payloads are our JSON instead of encrypted
MTProto messages (auth_key_id, msg_key, AES-IGE), resPQ stops after the nonces, and no
MTProxy secret is mixed into the keys (a direct connection, so a censor can decrypt the tag).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import time

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

from harness.apps.messengers.app import MessengerApp
from harness.apps.messengers.session import ChannelHandler, streams
from harness.trial import TrialContext

PREAMBLE = 64
TAGS = {"intermediate": b"\xee\xee\xee\xee", "abridged": b"\xef\xef\xef\xef"}
FORBIDDEN_FIRST = {
    b"HEAD", b"POST", b"GET ", b"OPTI", b"\xdd\xdd\xdd\xdd", b"\xee\xee\xee\xee",
    b"\x16\x03\x01\x02",
}  # fmt: skip
MAX_PAYLOAD = 1 << 24
REQ_PQ_MULTI, RES_PQ = 0xBE7E8EF1, 0x05162463  # TL constructors (core.telegram.org/schema)


def allowed(init: bytes) -> bool:
    """tdlib keeps these 64 bytes (none of the prefixes it redraws on)."""
    return init[0] != 0xEF and init[:4] not in FORBIDDEN_FIRST and init[4:8] != b"\0\0\0\0"


def _ctr(key: bytes, iv: bytes) -> CipherContext:
    return Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()  # CTR: same both ways


def make_preamble(framing: str, dc: int) -> tuple[bytes, CipherContext, CipherContext]:
    """(wire preamble, client->server cipher, server->client cipher) for a new connection."""
    while True:
        init = bytearray(os.urandom(PREAMBLE))
        if allowed(bytes(init)):
            break
    init[56:60] = TAGS[framing]
    init[60:62] = dc.to_bytes(2, "little", signed=True)
    out_cipher, in_cipher = keys(bytes(init))
    encrypted = out_cipher.update(bytes(init))
    return bytes(init[:56]) + encrypted[56:], out_cipher, in_cipher


def keys(init: bytes) -> tuple[CipherContext, CipherContext]:
    """(cipher of the client's stream, cipher of the server's stream) from a preamble."""
    reverse = init[8:56][::-1]
    return _ctr(init[8:40], init[40:56]), _ctr(reverse[:32], reverse[32:48])


class ObfuscatedChannel:
    """Intermediate (4-byte little-endian length) or abridged (length / 4 in one byte, or
    0x7f and three bytes) framing, all of it under the AES-CTR streams."""

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        framing: str,
        out_cipher: CipherContext,
        in_cipher: CipherContext,
    ) -> None:
        self.reader, self.writer, self.framing = reader, writer, framing
        self.out_cipher, self.in_cipher = out_cipher, in_cipher

    def _header(self, length: int) -> bytes:
        if self.framing == "intermediate":
            return length.to_bytes(4, "little")
        words = length // 4
        return bytes([words]) if words < 0x7F else b"\x7f" + words.to_bytes(3, "little")

    def encode(self, data: bytes) -> bytes:
        """One framed, encrypted message (advances the client's stream)."""
        if self.framing == "abridged":
            data += b" " * (-len(data) % 4)  # abridged lengths count 4-byte words
        return self.out_cipher.update(self._header(len(data)) + data)

    async def send(self, data: bytes) -> None:
        self.writer.write(self.encode(data))
        await self.writer.drain()

    async def _read(self, n: int) -> bytes:
        return self.in_cipher.update(await self.reader.readexactly(n))

    async def recv(self) -> bytes:
        if self.framing == "intermediate":
            length = int.from_bytes(await self._read(4), "little")
        else:
            first = (await self._read(1))[0]
            words = first if first < 0x7F else int.from_bytes(await self._read(3), "little")
            length = words * 4
        if length > MAX_PAYLOAD:
            raise ConnectionError(f"frame of {length} bytes")
        return await self._read(length)

    async def close(self) -> None:
        self.writer.close()


def plain_message(constructor: int, body: bytes) -> bytes:
    """An unencrypted MTProto message (core.telegram.org/mtproto/description): auth_key_id
    0, msg_id (unix time << 32), length, then the TL object."""
    msg_id = (int(time.time()) << 32) | (secrets.randbits(30) << 2)
    obj = constructor.to_bytes(4, "little") + body
    return bytes(8) + msg_id.to_bytes(8, "little") + len(obj).to_bytes(4, "little") + obj


def tl_object(message: bytes) -> tuple[int, bytes]:
    """(constructor, body) of an unencrypted MTProto message."""
    if len(message) < 24 or message[:8] != bytes(8):
        raise ValueError("not an unencrypted MTProto message")
    return int.from_bytes(message[20:24], "little"), message[24:]


async def client_handshake(sock: socket.socket, args: argparse.Namespace) -> ObfuscatedChannel:
    """The preamble and req_pq_multi in one write, as tdlib starts a new auth key; the
    data centre answered (OONI's criterion for Telegram) when resPQ echoes our nonce."""
    reader, writer = await streams(sock)
    preamble, out_cipher, in_cipher = make_preamble(args.framing, args.dc)
    channel = ObfuscatedChannel(reader, writer, args.framing, out_cipher, in_cipher)
    nonce = secrets.token_bytes(16)
    writer.write(preamble + channel.encode(plain_message(REQ_PQ_MULTI, nonce)))
    await writer.drain()
    constructor, body = tl_object(await channel.recv())
    if constructor != RES_PQ or body[:16] != nonce:
        raise ConnectionError(f"data centre answered {constructor:#x}, not resPQ with our nonce")
    return channel


async def serve(args: argparse.Namespace, on_channel: ChannelHandler) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            init = await reader.readexactly(PREAMBLE)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        in_cipher, out_cipher = keys(init)
        tag = in_cipher.update(init)[56:60]
        framing = next((name for name, t in TAGS.items() if t == tag), None)
        if framing is None:
            writer.close()  # not obfuscated2 (or another secret): a real DC hangs up
            return
        channel = ObfuscatedChannel(reader, writer, framing, out_cipher, in_cipher)
        try:
            constructor, body = tl_object(await channel.recv())
            if constructor != REQ_PQ_MULTI:
                raise ValueError(f"first request {constructor:#x} is not req_pq_multi")
            # resPQ: nonce, server_nonce (the pq and key fingerprints are left out).
            await channel.send(plain_message(RES_PQ, body[:16] + secrets.token_bytes(16)))
        except (ValueError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        await on_channel(channel)

    return await asyncio.start_server(accept, args.listen, args.port)


class TelegramLikeApp(MessengerApp):
    name = "telegram-like"
    profile = "telegram-like"
    options_field = "telegram_like"

    def client_args(self, ctx: TrialContext) -> list[str]:
        opts = self.options(ctx)
        # The data centre's address is built into the app: no DNS lookup at all.
        return [
            "--server", ctx.topology.addr("chat"),
            "--framing", opts.framing, "--dc", str(opts.dc),
        ]  # fmt: skip
