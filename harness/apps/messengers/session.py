"""What the three messenger profiles share: a connected socket (direct or through a tool's
SOCKS5), the failure classes, and the message exchange timed on the sender's clock.

A profile only supplies its wire: how a client turns a connected TCP socket into a
`Channel` (its handshake) and how its server accepts one. Everything measured is measured
here, the same way for every profile, so their numbers compare.

Messages are JSON objects inside the profile's encrypted frames: `{"type": "message", "id",
"body"}` from the client, `{"type": "receipt", "id"}` back from the server (the
"delivered to the server" tick every messenger shows), `{"type": "bye"}` to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from harness.net import socks5
from harness.net.resolve import DnsFailure, resolve_a
from harness.scoring.stats import percentile

# SOCKS5 reply codes (RFC 1928) mapped to what a direct connection would have seen.
_SOCKS_OUTCOME = {5: "refused", 3: "timeout", 4: "timeout", 6: "timeout"}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}


class Channel(Protocol):
    """An established, encrypted, message-preserving connection of one profile."""

    async def send(self, data: bytes) -> None: ...

    async def recv(self) -> bytes:
        """The next message; raises EOFError / ConnectionError when the peer is gone."""
        ...

    async def close(self) -> None: ...


ChannelHandler = Callable[[Channel], Awaitable[None]]


@dataclass(frozen=True)
class Failure:
    outcome: str
    error: str


class SessionFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error)
        self.failure = failure


def classify(exc: BaseException, stage: str) -> Failure:
    """Map an exception to an outcome class of harness.results.OUTCOMES."""
    text = f"{type(exc).__name__}: {exc} during {stage}".replace(":  ", ": ")
    if isinstance(exc, SessionFailed):
        return exc.failure
    if isinstance(exc, DnsFailure | socket.gaierror):
        return Failure("dns-failure", text)
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return Failure("reset", text)  # closed under TLS's feet: a FIN, not an alert
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Failure("tls-alert", text)
    if isinstance(exc, socks5.Socks5Error):
        return Failure(_SOCKS_OUTCOME.get(exc.code, "error"), f"SOCKS5: {text}")
    if isinstance(exc, ConnectionRefusedError):
        return Failure("refused", text)
    if isinstance(exc, ConnectionError | asyncio.IncompleteReadError | EOFError):
        # An RST, or an orderly close before the session is up: to the user the same.
        return Failure("reset", text)
    if isinstance(exc, TimeoutError):
        return Failure("timeout", text)
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return Failure("refused", text)  # ICMP unreachable / prohibited: a rejection
    if type(exc).__module__.startswith("websockets"):
        if exc.__cause__ is not None:  # e.g. InvalidMessage caused by an EOF or a reset
            return Failure(classify(exc.__cause__, stage).outcome, f"{text} ({exc.__cause__!r})")
        closed = "ConnectionClosed" in type(exc).__name__
        return Failure("reset" if closed else "error", text)
    return Failure("error", text)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


async def tcp_socket(host: str, port: int, socks: str | None, timeout: float) -> socket.socket:
    """A connected non-blocking TCP socket to host:port, through SOCKS5 CONNECT when `socks`
    is set (a name is then resolved by the proxy, i.e. on the tool's far side)."""
    if socks is None:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    else:
        proxy = socks5.ProxyAddress.parse(socks)
        _, writer = await socks5.open_connection(proxy, host, port, timeout=timeout)
    # Hand the bare socket to the profile (websockets, TLS) and drop asyncio's transport:
    # closing the transport closes only its own descriptor, the connection stays open.
    sock = socket.socket(fileno=os.dup(writer.get_extra_info("socket").fileno()))
    writer.transport.abort()
    sock.setblocking(False)
    return sock


async def streams(sock: socket.socket) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """asyncio streams over a connected socket (profiles without TLS)."""
    return await asyncio.open_connection(sock=sock)


def encode(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


async def answer(channel: Channel) -> int:
    """Server side of a session: a receipt for every message until bye or the peer leaves.
    Returns how many messages arrived."""
    received = 0
    try:
        while True:
            msg = json.loads(await channel.recv())
            if msg.get("type") == "bye":
                break
            if msg.get("type") == "message":
                received += 1
                await channel.send(encode({"type": "receipt", "id": msg["id"]}))
    except (EOFError, ConnectionError, asyncio.IncompleteReadError, ValueError):
        pass
    except Exception as exc:  # websockets' ConnectionClosed and the like
        if not type(exc).__module__.startswith("websockets"):
            raise
    finally:
        await channel.close()
    return received


@dataclass
class ClientPlan:
    server: str  # name or IPv4 address
    port: int
    resolver: str | None  # resolve `server` through this DNS server (direct only)
    socks: str | None
    count: int
    interval_ms: float
    timeout: float


Handshake = Callable[[socket.socket], Awaitable[Channel]]


async def _connect(plan: ClientPlan, handshake: Handshake, deadline: float) -> Channel:
    stage = "dns"
    try:
        host = plan.server
        if plan.resolver and not plan.socks:
            host = await asyncio.wait_for(
                resolve_a(plan.server, plan.resolver), deadline - time.monotonic()
            )
        stage = "socks5 connect" if plan.socks else "tcp connect"
        sock = await tcp_socket(host, plan.port, plan.socks, deadline - time.monotonic())
        stage = "handshake"
        return await asyncio.wait_for(handshake(sock), deadline - time.monotonic())
    except Exception as exc:
        raise SessionFailed(classify(exc, stage)) from None


async def run_client(plan: ClientPlan, handshake: Handshake) -> dict[str, Any]:
    """Connect, send plan.count messages, time each receipt; the agent's result event."""
    result: dict[str, Any] = {
        "event": "result", "outcome": "error", "error": None, "connected": False,
        "connect_ms": None, "sent": 0, "delivered": 0, "latency_ms_p50": None,
        "latency_ms_p95": None, "latencies_ms": [],
    }  # fmt: skip
    started = time.monotonic()
    try:
        channel = await _connect(plan, handshake, started + plan.timeout)
    except SessionFailed as exc:
        result.update(outcome=exc.failure.outcome, error=exc.failure.error)
        return result
    # Connect time spans DNS, TCP (or SOCKS5), and the profile's handshake: what the user
    # waits for before the app shows "connected".
    result.update(outcome="ok", connected=True, connect_ms=_ms((time.monotonic() - started) * 1e3))

    sent_at: dict[str, float] = {}
    latency: dict[str, float] = {}
    all_in = asyncio.get_running_loop().create_future()
    lost: list[str] = []

    async def read_receipts() -> None:
        try:
            while True:
                msg = json.loads(await channel.recv())
                mid = msg.get("id")
                if msg.get("type") == "receipt" and mid in sent_at and mid not in latency:
                    latency[mid] = (time.monotonic() - sent_at[mid]) * 1000
                    if len(latency) == plan.count and not all_in.done():
                        all_in.set_result(True)
        except Exception as exc:
            lost.append(classify(exc, "messaging").error)
            if not all_in.done():
                all_in.set_result(False)

    reader = asyncio.create_task(read_receipts())
    token = uuid.uuid4().hex[:8]
    try:
        for i in range(plan.count):
            if all_in.done():
                break  # the session is gone
            mid = f"gc-{token}-{i}"
            sent_at[mid] = time.monotonic()
            await channel.send(encode({"type": "message", "id": mid, "body": f"gatecrash {i}"}))
            if i + 1 < plan.count:
                await asyncio.sleep(plan.interval_ms / 1000)
        await asyncio.wait([all_in], timeout=plan.timeout)
    except Exception as exc:
        lost.append(classify(exc, "messaging").error)
    values = [latency[m] for m in sent_at if m in latency]
    result.update(
        sent=len(sent_at),
        delivered=len(values),
        latency_ms_p50=_ms(percentile(values, 50)),
        latency_ms_p95=_ms(percentile(values, 95)),
        latencies_ms=[_ms(latency.get(m)) for m in sent_at],
    )
    if lost:
        result["error"] = f"session lost after connecting: {lost[0]}"
    elif len(values) < len(sent_at):
        missing = len(sent_at) - len(values)
        result["error"] = f"{missing} receipt(s) missing after {plan.timeout:g} s"
    reader.cancel()
    # A bye or close that hangs or fails does not change what was measured.
    with contextlib.suppress(Exception):
        if not lost:
            await asyncio.wait_for(channel.send(encode({"type": "bye"})), 1.0)
    with contextlib.suppress(Exception):
        await asyncio.wait_for(channel.close(), 1.0)
    return result
