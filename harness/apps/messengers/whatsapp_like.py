"""`whatsapp-like`: WhatsApp's chat transport as a DPI box sees it, on TCP 443 or 5222.

Source: Baileys (WhiskeySockets/Baileys) `src/Defaults/index.ts` (`NOISE_MODE =
"Noise_XX_25519_AESGCM_SHA256\\0\\0\\0\\0"`, `NOISE_WA_HEADER = [87, 65, 6, DICT_VERSION]`
with DICT_VERSION 3) and `src/Utils/noise-handler.ts` (the header goes out once, in front of
the first frame; every frame is a 3-byte big-endian length and its body; the handshake
frames are `HandshakeMessage` protobufs: clientHello {ephemeral}, serverHello {ephemeral,
static, payload}, clientFinish {static, payload}) and `src/Socket/socket.ts` (the login is
done when the server's `success` node arrives). No TLS, no SNI: the "WA" prologue is the
only clear fingerprint, and it is also mixed into the Noise handshake hash as its prologue.

Differences from the real app, none visible before the encryption starts: the handshake
payloads and the messages are our JSON instead of WhatsApp's ClientPayload and binary XMPP
nodes, and the server is ours, so there is no certificate chain inside the handshake.
"""

from __future__ import annotations

import argparse
import asyncio
import socket

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from noise.connection import Keypair, NoiseConnection

from harness.apps.messengers.app import MessengerApp
from harness.apps.messengers.session import ChannelHandler, streams
from harness.trial import TrialContext

PROLOGUE = bytes([87, 65, 6, 3])  # "WA", major 6, dictionary version 3
NOISE_NAME = b"Noise_XX_25519_AESGCM_SHA256"
MAX_FRAME = (1 << 24) - 1
DH_LEN, TAG_LEN = 32, 16
# HandshakeMessage (WAProto): clientHello = 2, serverHello = 3, clientFinish = 4.
CLIENT_HELLO, SERVER_HELLO, CLIENT_FINISH = 2, 3, 4
# The server's first transport frame, WhatsApp's <success> node: the client is logged in
# (and shows "connected") once it arrives, so the connect time includes it.
SUCCESS = b'{"type":"success"}'


# --- a minimal protobuf codec: length-delimited fields only, which is all these use ---


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def pb_fields(**fields: bytes) -> bytes:
    """Encode `f<number>=bytes` keyword arguments as length-delimited fields."""
    out = bytearray()
    for key, value in fields.items():
        out += _varint(int(key[1:]) << 3 | 2) + _varint(len(value)) + value
    return bytes(out)


def pb_parse(data: bytes) -> dict[int, bytes]:
    """Length-delimited fields by number; raises ValueError on anything else."""
    out: dict[int, bytes] = {}
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        if key & 7 != 2:
            raise ValueError(f"unexpected protobuf wire type {key & 7}")
        length, pos = _read_varint(data, pos)
        if pos + length > len(data):
            raise ValueError("truncated protobuf field")
        out[key >> 3] = data[pos : pos + length]
        pos += length
    return out


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7
    raise ValueError("truncated varint")


# --- frames and the Noise handshake ---


def frame(body: bytes) -> bytes:
    if len(body) > MAX_FRAME:
        raise ValueError("frame too long")
    return len(body).to_bytes(3, "big") + body


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    length = int.from_bytes(await reader.readexactly(3), "big")
    return await reader.readexactly(length)


def _noise(initiator: bool) -> NoiseConnection:
    noise = NoiseConnection.from_name(NOISE_NAME)
    key = X25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    noise.set_keypair_from_private_bytes(Keypair.STATIC, key)
    noise.set_prologue(PROLOGUE)
    if initiator:
        noise.set_as_initiator()
    else:
        noise.set_as_responder()
    noise.start_handshake()
    return noise


def client_hello(noise: NoiseConnection) -> bytes:
    """The client's first bytes on the wire: prologue + HandshakeMessage{clientHello}."""
    ephemeral = noise.write_message()
    return PROLOGUE + frame(pb_fields(f2=pb_fields(f1=ephemeral)))


class NoiseChannel:
    """Transport phase: each message one frame of Noise ciphertext (AES-GCM)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, noise: NoiseConnection
    ) -> None:
        self.reader, self.writer, self.noise = reader, writer, noise

    async def send(self, data: bytes) -> None:
        self.writer.write(frame(self.noise.encrypt(data)))
        await self.writer.drain()

    async def recv(self) -> bytes:
        return self.noise.decrypt(await read_frame(self.reader))

    async def close(self) -> None:
        self.writer.close()


async def client_handshake(sock: socket.socket, args: argparse.Namespace) -> NoiseChannel:
    """XX: -> e; <- e, ee, s, es; -> s, se. Payloads are small JSON blobs."""
    reader, writer = await streams(sock)
    noise = _noise(initiator=True)
    writer.write(client_hello(noise))  # one segment, as Baileys writes it
    await writer.drain()
    hello = pb_parse(pb_parse(await read_frame(reader))[SERVER_HELLO])
    noise.read_message(hello[1] + hello[2] + hello[3])
    finish = noise.write_message(b'{"client":"gatecrash whatsapp-like"}')
    static, payload = finish[: DH_LEN + TAG_LEN], finish[DH_LEN + TAG_LEN :]
    writer.write(frame(pb_fields(f4=pb_fields(f1=static, f2=payload))))
    await writer.drain()
    channel = NoiseChannel(reader, writer, noise)
    if await channel.recv() != SUCCESS:
        raise ConnectionError("the server did not confirm the login")
    return channel


async def serve(args: argparse.Namespace, on_channel: ChannelHandler) -> asyncio.Server:
    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if await reader.readexactly(len(PROLOGUE)) != PROLOGUE:
                writer.close()  # not our dialect: a real server hangs up too
                return
            noise = _noise(initiator=False)
            noise.read_message(pb_parse(pb_parse(await read_frame(reader))[CLIENT_HELLO])[1])
            reply = noise.write_message(b'{"server":"gatecrash whatsapp-like"}')
            ephemeral, static = reply[:DH_LEN], reply[DH_LEN : 2 * DH_LEN + TAG_LEN]
            payload = reply[2 * DH_LEN + TAG_LEN :]
            writer.write(frame(pb_fields(f3=pb_fields(f1=ephemeral, f2=static, f3=payload))))
            await writer.drain()
            finish = pb_parse(pb_parse(await read_frame(reader))[CLIENT_FINISH])
            noise.read_message(finish[1] + finish[2])
            channel = NoiseChannel(reader, writer, noise)
            await channel.send(SUCCESS)
        except Exception:  # a probe, a reset, garbage: drop the connection
            writer.close()
            return
        await on_channel(channel)

    return await asyncio.start_server(accept, args.listen, args.port)


class WhatsAppLikeApp(MessengerApp):
    name = "whatsapp-like"
    profile = "whatsapp-like"
    options_field = "whatsapp_like"

    def client_args(self, ctx: TrialContext) -> list[str]:
        return self.by_name(ctx, self.zone_name())
