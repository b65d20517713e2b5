"""XMPP chat agents run inside a trial's hosts: `python -m harness.apps.xmpp.agent ...`.

`receiver` logs in, becomes available, prints {"event": "ready"}, answers every message with
an XEP-0184 receipt and leaves on a "bye" message (or after --max-wait). `sender` logs in
(directly or through a tool's SOCKS5 port), sends --count messages each asking for a
receipt, and prints one {"event": "result"} line whose keys are MessageMetrics' fields plus
outcome/error. Delivery latency is send -> receipt arrival on the sender's monotonic clock,
so it spans both legs (alice -> server -> bob -> server -> alice): what a user sees as the
"delivered" tick. Exit status is 0 whatever the outcome; non-zero means bad arguments or a
crash.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import ssl
import sys
import time
import uuid
from typing import Any

from harness.agent_io import emit, run_and_report
from harness.apps.xmpp.client import AgentClient, Failure, SessionFailed
from harness.net.resolve import DnsFailure, resolve_a
from harness.net.socks5 import ProxyAddress
from harness.scoring.stats import percentile

BYE = "bye"
DNS_TIMEOUT_S = 2.0


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _ssl_context(cafile: str) -> ssl.SSLContext:
    """Trust only the run CA; hostname checked against the XMPP domain (as real clients do)."""
    return ssl.create_default_context(cafile=cafile)


async def _server_address(args: argparse.Namespace) -> str:
    """The address to connect to: resolved via --resolver when given, else as given (a name
    then goes to the SOCKS5 proxy, or to the host's own hosts file when direct)."""
    if args.resolver:
        return await resolve_a(args.server, args.resolver, timeout=DNS_TIMEOUT_S)
    return args.server


async def _open_session(args: argparse.Namespace, deadline: float) -> tuple[AgentClient, float]:
    """Resolve, connect, TLS, log in. Returns (client, connect_ms) or raises SessionFailed."""
    try:
        address = await asyncio.wait_for(_server_address(args), deadline - time.monotonic())
    except DnsFailure as exc:
        raise SessionFailed(Failure("dns-failure", str(exc))) from None
    except TimeoutError:
        why = f"{args.server}: no answer from resolver {args.resolver} within {args.timeout:g} s"
        raise SessionFailed(Failure("dns-failure", why)) from None
    socks = ProxyAddress.parse(args.socks) if args.socks else None
    client = AgentClient(
        args.jid,
        args.password,
        _ssl_context(args.ca),
        socks=socks,
        socks_timeout=max(0.1, deadline - time.monotonic()),
    )
    client.register_plugin("xep_0184")  # receipts; auto-acks requests on the receiver
    client.plugin["xep_0184"].auto_request = False  # the sender asks explicitly
    # The JID's domain stays the TLS name and stream `to`; only the address is overridden.
    client.connect(host=address, port=args.port)
    try:
        connect_ms = await asyncio.wait_for(
            asyncio.shield(client.session), deadline - time.monotonic()
        )
    except TimeoutError:
        client.fail(Failure("timeout", f"no session within {args.timeout:g} s ({client.stage})"))
        client.stop()
        raise SessionFailed(client.failure) from None  # type: ignore[arg-type]
    except SessionFailed:
        client.stop()
        raise
    return client, connect_ms


async def _close(client: AgentClient, wait: float = 1.0) -> None:
    """Close the stream politely, but never wait long for it."""
    try:
        await asyncio.wait_for(client.disconnect(wait=wait), wait + 0.5)
    except (TimeoutError, OSError):
        client.stop()


async def _go_online(client: AgentClient, timeout: float) -> None:
    """Send presence and wait for the server's echo of it, as a client does before it shows
    "online". Sending at once would race that echo: Prosody keeps Nagle on, so a receipt
    written right after the unacknowledged echo waits for our delayed ACK (~40 ms on Linux),
    an artefact that would dominate the first message's latency."""
    echoed = asyncio.get_running_loop().create_future()

    def on_presence(presence: Any) -> None:
        if presence["from"] == client.boundjid and not echoed.done():
            echoed.set_result(True)

    client.add_event_handler("presence_available", on_presence)
    client.send_presence()
    await asyncio.wait([echoed, client.lost], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    client.del_event_handler("presence_available", on_presence)


async def run_receiver(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    deadline = started + args.max_wait
    try:
        client, connect_ms = await _open_session(args, min(deadline, started + args.timeout))
    except SessionFailed as exc:
        f = exc.failure
        return {"event": "result", "outcome": f.outcome, "error": f.error, "received": 0}
    received: set[str] = set()
    bye = asyncio.get_running_loop().create_future()

    def on_message(msg: Any) -> None:
        if msg["type"] not in ("chat", "normal") or not msg["body"]:
            return
        if msg["body"] == BYE:
            if not bye.done():
                bye.set_result(True)
        else:
            received.add(msg["id"] or f"no-id-{len(received)}")

    client.add_event_handler("message", on_message)
    client.send_presence()
    # Presence and this query are handled in order by the server: once the roster is back,
    # this resource is available and messages to the bare JID reach it.
    try:
        await client.get_roster(timeout=max(0.1, deadline - time.monotonic()))
    except Exception as exc:  # IqTimeout, IqError, a lost connection
        client.stop()
        return {"event": "result", "outcome": "error", "error": f"roster: {exc!r}", "received": 0}
    emit({"event": "ready", "connect_ms": _ms(connect_ms), "jid": str(client.boundjid)})
    remaining = max(0.0, deadline - time.monotonic())
    await asyncio.wait([bye, client.lost], timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
    result: dict[str, Any] = {"event": "result", "outcome": "ok", "error": None}
    if not bye.done():
        lost = client.lost.result() if client.lost.done() else None
        result["error"] = lost.error if lost else f"no bye within {args.max_wait:g} s"
    result.update(received=len(received), connect_ms=_ms(connect_ms))
    await _close(client)
    return result


async def run_sender(args: argparse.Namespace) -> dict[str, Any]:
    result: dict[str, Any] = {
        "event": "result",
        "outcome": "error",
        "error": None,
        "connected": False,
        "connect_ms": None,
        "sent": 0,
        "delivered": 0,
        "latency_ms_p50": None,
        "latency_ms_p95": None,
        "latencies_ms": [],
    }
    started = time.monotonic()
    try:
        client, connect_ms = await _open_session(args, started + args.timeout)
    except SessionFailed as exc:
        result.update(outcome=exc.failure.outcome, error=exc.failure.error)
        return result
    result.update(outcome="ok", connected=True, connect_ms=_ms(connect_ms))
    await _go_online(client, args.timeout)

    token = uuid.uuid4().hex[:8]
    sent_at: dict[str, float] = {}
    latency: dict[str, float] = {}
    errors: list[str] = []
    all_in = asyncio.get_running_loop().create_future()

    def check_done() -> None:
        if len(latency) + len(errors) >= args.count and not all_in.done():
            all_in.set_result(True)

    def on_receipt(msg: Any) -> None:
        mid = msg["receipt"]
        if mid in sent_at and mid not in latency:
            latency[mid] = (time.monotonic() - sent_at[mid]) * 1000
            check_done()

    def on_error(msg: Any) -> None:
        if msg["id"] in sent_at and msg["id"] not in latency:
            errors.append(f"{msg['id']}: {msg['error']['condition']}")
            check_done()

    client.add_event_handler("receipt_received", on_receipt)
    client.add_event_handler("message_error", on_error)
    for i in range(args.count):
        if client.lost.done():
            break
        mid = f"gc-{token}-{i}"
        msg = client.make_message(mto=args.to, mbody=f"gatecrash message {i}", mtype="chat")
        msg["id"] = mid
        msg["request_receipt"] = True
        sent_at[mid] = time.monotonic()
        msg.send()
        if i + 1 < args.count:
            await asyncio.sleep(args.interval_ms / 1000)
    result["sent"] = len(sent_at)
    await asyncio.wait(
        [all_in, client.lost], timeout=args.timeout, return_when=asyncio.FIRST_COMPLETED
    )

    values = [latency[m] for m in sent_at if m in latency]
    result.update(
        delivered=len(values),
        latency_ms_p50=_ms(percentile(values, 50)),
        latency_ms_p95=_ms(percentile(values, 95)),
        latencies_ms=[_ms(latency.get(m)) for m in sent_at],
    )
    if client.lost.done():
        result["error"] = f"session lost after connecting: {client.lost.result().error}"
    elif errors:
        result["error"] = f"{len(errors)} message error(s), first {errors[0]}"
    elif len(values) < len(sent_at):
        result["error"] = (
            f"{len(sent_at) - len(values)} receipt(s) missing after {args.timeout:g} s"
        )
    if not client.lost.done():
        client.send_message(mto=args.to, mbody=BYE, mtype="chat")
        await _close(client)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.xmpp.agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--server", required=True, help="server name or IPv4 address")
    common.add_argument("--port", type=int, default=5222)
    common.add_argument("--domain", required=True, help="XMPP domain = expected TLS name")
    common.add_argument("--jid", required=True)
    common.add_argument("--password", required=True)
    common.add_argument("--ca", required=True, help="PEM file of the run CA")
    common.add_argument("--resolver", help="resolve --server via this DNS server (IPv4)")
    common.add_argument(
        "--socks",
        help="connect through this SOCKS5 proxy (CONNECT), host:port; without --resolver a "
        "server name is resolved by the proxy",
    )
    common.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to get a session (DNS+TCP+TLS+login); the sender also waits this long "
        "for receipts after its last message",
    )
    common.add_argument("-v", "--verbose", action="store_true", help="slixmpp debug log")

    rx = sub.add_parser("receiver", parents=[common], help="answer messages with receipts")
    rx.add_argument("--max-wait", type=float, default=30.0, help="seconds before giving up")

    tx = sub.add_parser("sender", parents=[common], help="send messages, time the receipts")
    tx.add_argument("--to", required=True, help="recipient JID")
    tx.add_argument("--count", type=int, default=10)
    tx.add_argument("--interval-ms", type=float, default=50.0)
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.jid.endswith("@" + args.domain) and f"@{args.domain}/" not in args.jid:
        parser.error(f"--jid {args.jid} is not in --domain {args.domain}")
    if args.socks:
        try:
            ProxyAddress.parse(args.socks)
        except ValueError:
            parser.error(f"--socks {args.socks!r}: expected host:port")
    if args.timeout <= 0 or getattr(args, "count", 1) < 1:
        parser.error("--timeout must be > 0 and --count >= 1")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(parser, args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    run = run_receiver if args.command == "receiver" else run_sender
    return run_and_report(run(args))


if __name__ == "__main__":
    sys.exit(main())
