"""Meek server on `proxy` (Psiphon: psiphon/server/meek.go): plain HTTP, reached through the
front. Each session (cookie) gets a pipe into the ordinary OSSH server; a POST's body goes
into the pipe, and its response carries the OSSH bytes that came out meanwhile.

A request with nothing waiting downstream is held up to FIRST_BYTE_WAIT for data (a short
long-poll); once bytes come, more are collected until TURN_AROUND passes without any or
EXTENDED_TURN_AROUND in all (Psiphon's MEEK_TURN_AROUND_TIMEOUT and _EXTENDED_ are 20 and
100 ms; ours are 1 and 10 ms, with a 5 ms long-poll, so that a UDP echo through meek is not
held behind an idle poll). As in Psiphon, a session's requests are handled one at a time
(a lock). Anything not meek (no session cookie, not a POST) gets a plain 404.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from harness.tools.psiphon_like import http11
from harness.tools.psiphon_like.meek_pipe import PipeEnd, open_pipe
from harness.tools.psiphon_like.meek_protocol import (
    MAX_PAYLOAD,
    SEQ_HEADER,
    MeekError,
    Resend,
    SessionState,
    parse_seq,
    session_id_from,
)
from harness.tools.psiphon_like.server import OsshServer, log, serve_main

FIRST_BYTE_WAIT = 0.005
TURN_AROUND = 0.001
EXTENDED_TURN_AROUND = 0.01
REAP_EVERY = 5.0
HEADERS = [("Content-Type", "application/octet-stream"), ("Cache-Control", "no-store")]


@dataclass
class _Session:
    state: SessionState
    pipe: PipeEnd
    task: asyncio.Task
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class MeekServer:
    def __init__(self, ossh: OsshServer) -> None:
        self.ossh = ossh
        self.sessions: dict[str, _Session] = {}

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One HTTP connection (from the front, kept alive across many requests)."""
        tcp_peer = writer.get_extra_info("peername")[0]
        try:
            while (msg := await http11.read_message(reader, MAX_PAYLOAD)) is not None:
                status, body = await self._dispatch(msg, tcp_peer)
                writer.write(http11.response(status, HEADERS, body))
                await writer.drain()
        except http11.HttpError as exc:
            writer.write(http11.response(exc.status, HEADERS, b""))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _dispatch(self, msg: http11.Message, tcp_peer: str) -> tuple[int, bytes]:
        try:
            if not msg.start.startswith("POST "):
                raise MeekError(404, "not a POST")
            sid = session_id_from(msg.get("cookie"))
            seq = parse_seq(msg.get(SEQ_HEADER))
            session = self.sessions.get(sid)
            if session is None:
                if seq != 0:
                    raise MeekError(404, "unknown session")
                # The client's address as the front saw it, for the OSSH seed history.
                peer = (msg.get("x-forwarded-for") or tcp_peer).split(",")[0].strip()
                session = await self._open(sid, peer)
            async with session.lock:
                step = session.state.request(seq)
                if isinstance(step, Resend):
                    log("meek-resend", session=sid[:8], seq=seq)
                    return 200, step.body
                if msg.body:
                    session.pipe.write(msg.body)
                body = await self._collect(session.pipe)
                session.state.responded(seq, body)
                return 200, body
        except MeekError as exc:
            return exc.status, b""

    async def _open(self, sid: str, peer: str) -> _Session:
        pipe, reader, writer = await open_pipe()
        task = asyncio.create_task(self.ossh.handle(reader, writer, peer))
        session = self.sessions[sid] = _Session(SessionState(), pipe, task)
        task.add_done_callback(lambda _: self._end(sid, "ossh closed"))
        log("meek-session", session=sid[:8], peer=peer)
        return session

    def _end(self, sid: str, why: str) -> None:
        session = self.sessions.pop(sid, None)
        if session is not None:
            session.pipe.close()
            session.task.cancel()
            log("meek-session-end", session=sid[:8], reason=why)

    async def _collect(self, pipe: PipeEnd) -> bytes:
        if not await pipe.wait(FIRST_BYTE_WAIT):
            return b""
        out = bytearray(pipe.take(MAX_PAYLOAD))
        deadline = time.monotonic() + EXTENDED_TURN_AROUND
        while len(out) < MAX_PAYLOAD and not pipe.closed:
            left = deadline - time.monotonic()
            if left <= 0 or not await pipe.wait(min(TURN_AROUND, left)):
                break
            out += pipe.take(MAX_PAYLOAD - len(out))
        return bytes(out)

    async def reap(self) -> None:
        """Close sessions no request has touched for MAX_SESSION_STALENESS."""
        while True:
            await asyncio.sleep(REAP_EVERY)
            for sid in [s for s, sess in self.sessions.items() if sess.state.stale()]:
                self._end(sid, "stale")


async def serve(listen: str, keyword: str, password: str) -> None:
    host, _, port = listen.rpartition(":")
    meek = MeekServer(OsshServer(keyword, password))
    http = await asyncio.start_server(meek.handle, host.strip("[]"), int(port))
    reaper = asyncio.create_task(meek.reap())
    log("listening", listen=listen, meek=True)
    try:
        async with http:
            await http.serve_forever()
    finally:
        reaper.cancel()


def main() -> None:
    serve_main(serve, __doc__.split("\n\n")[0], "IP:PORT (plain HTTP, behind the front)")


if __name__ == "__main__":
    main()
