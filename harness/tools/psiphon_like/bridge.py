"""Puts the OSSH layer under an unmodified asyncssh connection: asyncssh runs on one end of a
socketpair, and two pumps carry bytes between the other end and the TCP connection, applying
the session's (de)obfuscation (what ObfuscatedSSHConn does for Go's ssh package)."""

from __future__ import annotations

import asyncio
import contextlib
import socket

from harness.tools.psiphon_like.obfuscator import Session


async def _pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, transform) -> None:
    try:
        while data := await src.read(65536):
            dst.write(transform(data))
            await dst.drain()
    except (ConnectionError, OSError, ValueError):
        pass
    finally:
        dst.close()


async def bridge(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: Session
) -> tuple[socket.socket, asyncio.Task]:
    """Returns the socket to hand to asyncssh and the task that ends when both pumps do."""
    ssh_side, our_side = socket.socketpair()
    ssh_side.setblocking(False)
    pair_reader, pair_writer = await asyncio.open_connection(sock=our_side)

    async def run() -> None:
        try:
            await asyncio.gather(
                _pump(reader, pair_writer, session.incoming),
                _pump(pair_reader, writer, session.outgoing),
            )
        finally:
            for w in (writer, pair_writer):
                with contextlib.suppress(Exception):
                    w.close()

    return ssh_side, asyncio.create_task(run())
