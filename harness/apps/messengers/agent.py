"""Messenger profile agents, run inside a trial's hosts: `python -m harness.apps.messengers.agent
{server,client} --profile {signal-like,whatsapp-like,telegram-like} ...`.

`server` listens, prints {"event": "ready"}, answers each message of each session with a
receipt and prints {"event": "session", "received": N} when a session ends; it runs until
stopped. `client` connects (direct, or through --socks), sends --count messages and prints
one {"event": "result"} line whose keys are MessageMetrics' fields plus outcome/error and
the per-message latencies. Exit status is 0 whatever the outcome; non-zero means bad
arguments or a crash.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from types import ModuleType
from typing import Any

from harness.agent_io import emit, run_and_report
from harness.apps.messengers.session import Channel, ClientPlan, answer, run_client
from harness.net.socks5 import ProxyAddress

PROFILES = {
    "signal-like": "harness.apps.messengers.signal_like",
    "whatsapp-like": "harness.apps.messengers.whatsapp_like",
    "telegram-like": "harness.apps.messengers.telegram_like",
}


def profile_module(name: str) -> ModuleType:
    return importlib.import_module(PROFILES[name])


async def run_server(args: argparse.Namespace) -> None:
    module = profile_module(args.profile)

    async def on_channel(channel: Channel) -> None:
        emit({"event": "session", "received": await answer(channel)})

    server = await module.serve(args, on_channel)
    emit({"event": "ready", "profile": args.profile, "port": args.port})
    await server.serve_forever()


async def client(args: argparse.Namespace) -> dict[str, Any]:
    module = profile_module(args.profile)
    plan = ClientPlan(
        args.server, args.port, args.resolver, args.socks, args.count, args.interval_ms,
        args.timeout,
    )  # fmt: skip
    return await run_client(plan, lambda sock: module.client_handshake(sock, args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness.apps.messengers.agent", description=__doc__
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", required=True, choices=sorted(PROFILES))
    common.add_argument("--port", type=int, required=True)
    common.add_argument("-v", "--verbose", action="store_true")

    srv = sub.add_parser("server", parents=[common], help="answer messages with receipts")
    srv.add_argument("--listen", required=True, help="IPv4 address to listen on")
    srv.add_argument("--cert", help="PEM certificate chain (signal-like)")
    srv.add_argument("--key", help="PEM private key (signal-like)")

    cli = sub.add_parser("client", parents=[common], help="send messages, time the receipts")
    cli.add_argument("--server", required=True, help="server name or IPv4 address")
    cli.add_argument("--resolver", help="resolve --server via this DNS server (not via --socks)")
    cli.add_argument("--socks", help="SOCKS5 proxy host:port (CONNECT)")
    cli.add_argument("--count", type=int, default=10)
    cli.add_argument("--interval-ms", type=float, default=50.0)
    cli.add_argument(
        "--timeout", type=float, default=10.0,
        help="seconds to connect; also how long to wait for receipts after the last message",
    )  # fmt: skip
    cli.add_argument("--sni", help="TLS server name (signal-like; default --server)")
    cli.add_argument("--ca", help="PEM file of the run CA (signal-like)")
    cli.add_argument(
        "--framing", default="intermediate", choices=("intermediate", "abridged"),
        help="MTProto transport framing (telegram-like)",
    )  # fmt: skip
    cli.add_argument("--dc", type=int, default=2, help="data-centre id (telegram-like)")
    return parser


def _check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.command == "server" and args.profile == "signal-like" and not (args.cert and args.key):
        parser.error("the signal-like server needs --cert and --key")
    if args.command != "client":
        return
    if args.profile == "signal-like" and not args.ca:
        parser.error("the signal-like client needs --ca")
    if args.socks:
        try:
            ProxyAddress.parse(args.socks)
        except ValueError:
            parser.error(f"--socks {args.socks!r}: expected host:port")
    if args.timeout <= 0 or args.count < 1:
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
    if args.command == "server":
        asyncio.run(run_server(args))
        return 0
    return run_and_report(client(args))


if __name__ == "__main__":
    sys.exit(main())
