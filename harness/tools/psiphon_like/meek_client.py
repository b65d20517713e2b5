"""Meek client (Psiphon: psiphon/meekConn.go): carries the OSSH stream in HTTP POST bodies
over one kept-alive HTTPS connection to the front, polling for downstream bytes.

Fronting: TCP and TLS go to the front's address with SNI = the front domain (verified against
the run's CA); the Host header names the real backend, which only the front reads. One request
is in flight at a time; see meek_protocol for polling and retries.

    python -m harness.tools.psiphon_like.meek_client --front IP:443 --sni FRONT \\
        --host BACKEND --ca CA --keyword K --password P --socks 127.0.0.1:1083
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys

from harness.tools.psiphon_like import client, http11
from harness.tools.psiphon_like.meek_pipe import PipeEnd, open_pipe
from harness.tools.psiphon_like.meek_protocol import (
    MAX_PAYLOAD,
    ROUND_TRIP_TIMEOUT,
    SEQ_HEADER,
    PollSchedule,
    PollTiming,
    new_cookie,
    retry_delays,
)

log = client.log


class MeekFailed(ConnectionError):
    """A round trip failed beyond its retries, or the server refused the session."""


class MeekClient:
    def __init__(
        self, front: str, sni: str, host: str, ca: str, timing: PollTiming | None = None
    ) -> None:
        addr, _, port = front.rpartition(":")
        self.front = (addr.strip("[]"), int(port))
        self.sni, self.host, self.timing = sni, host, timing or PollTiming()
        self.ssl = ssl.create_default_context(cafile=ca)
        self.ssl.set_alpn_protocols(["http/1.1"])
        self.cookie = "=".join(new_cookie())
        self._conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._relay: asyncio.Task | None = None
        self.stats = {"requests": 0, "retries": 0, "up_bytes": 0, "down_bytes": 0}

    async def dial(self) -> client.Streams:
        """The OSSH-side streams of a new meek session. The first TLS connection is made
        here (Psiphon pre-dials it too), so an unreachable front fails the dial at once."""
        await self._connect()
        pipe, reader, writer = await open_pipe()
        self._relay = asyncio.create_task(self._run(pipe))
        return reader, writer

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._conn is None:
            self._conn = await asyncio.open_connection(
                *self.front, ssl=self.ssl, server_hostname=self.sni
            )
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn[1].close()
            self._conn = None

    async def _run(self, pipe: PipeEnd) -> None:
        schedule = PollSchedule(self.timing)
        interval, seq = schedule.interval, 0
        try:
            while True:
                await pipe.wait(interval)
                if pipe.closed and not pipe.pending:
                    break
                body = pipe.take(MAX_PAYLOAD)
                down = await self.round_trip(seq, body)
                seq += 1
                if down:
                    pipe.write(down)
                interval = schedule.after(bool(body) or bool(down))
        except (MeekFailed, http11.HttpError) as exc:
            log("meek-error", error=str(exc), **self.stats)
        finally:
            pipe.close()
            self._drop()

    async def round_trip(self, seq: int, body: bytes) -> bytes:
        headers = [
            ("Host", self.host),
            ("Cookie", self.cookie),
            ("Content-Type", "application/octet-stream"),
            (SEQ_HEADER, str(seq)),
        ]
        raw = http11.request("POST", "/", headers, body)
        delays = retry_delays()
        for attempt in range(len(delays) + 1):
            try:
                reader, writer = await self._connect()
                writer.write(raw)
                await writer.drain()
                answer = await asyncio.wait_for(http11.read_message(reader), ROUND_TRIP_TIMEOUT)
                if answer is None:
                    raise ConnectionError("front closed the connection")
            except (OSError, asyncio.IncompleteReadError, TimeoutError, http11.HttpError) as exc:
                self._drop()
                if attempt == len(delays):
                    raise MeekFailed(f"round trip {seq} failed: {exc}") from None
                self.stats["retries"] += 1
                await asyncio.sleep(delays[attempt])
                continue
            if answer.status != 200:
                raise MeekFailed(f"round trip {seq}: HTTP {answer.status}")
            self.stats["requests"] += 1
            self.stats["up_bytes"] += len(body)
            self.stats["down_bytes"] += len(answer.body)
            return answer.body
        raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--front", required=True, help="IP:PORT of the fronting HTTPS server")
    parser.add_argument("--sni", required=True, help="front domain (TLS SNI)")
    parser.add_argument("--host", required=True, help="HTTP Host: the meek backend's name")
    parser.add_argument("--ca", required=True, help="CA certificate to verify the front with")
    parser.add_argument("--keyword", required=True, help="OSSH obfuscation keyword")
    parser.add_argument("--password", required=True, help="SSH password")
    parser.add_argument("--socks", default="127.0.0.1:1083", help="local SOCKS5 listen address")
    parser.add_argument("--min-poll-ms", type=float, default=PollTiming.min_interval * 1e3)
    parser.add_argument("--max-poll-ms", type=float, default=PollTiming.max_interval * 1e3)
    client.add_padding_args(parser)
    args = parser.parse_args()
    if not args.keyword:
        sys.exit("missing keyword")
    timing = PollTiming(min_interval=args.min_poll_ms / 1e3, max_interval=args.max_poll_ms / 1e3)
    meek = MeekClient(args.front, args.sni, args.host, args.ca, timing)
    with contextlib.suppress(KeyboardInterrupt):
        padding = (args.padding_min, args.padding_max)
        asyncio.run(client.run(meek.dial, args.keyword, args.password, args.socks, padding))


if __name__ == "__main__":
    main()
