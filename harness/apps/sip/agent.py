"""SIP call agents run inside a trial's hosts: `python -m harness.apps.sip.agent ...`.

`callee` registers, prints {"event": "registered"}, auto-answers one INVITE (180, then 200
after --answer-delay-ms), sends RTP until the BYE (symmetric RTP: to the SDP address until
the caller's first packet, then to that packet's source; it starts on the ACK, after a short
grace for that first packet), answers the BYE and prints {"event": "result"}. `caller`
resolves the registrar through --resolver, registers, calls, exchanges RTP for --duration
seconds, hangs up and prints {"event": "result"}.

Through a proxy (--socks): SIP over TCP uses CONNECT; SIP over UDP and RTP use UDP
ASSOCIATE with --socks-udp. Without --socks-udp the tool carries no UDP, so RTP (and SIP
over UDP) go direct, as an app whose proxy setting covers TCP only; the result says which
path each took (`sip_path`, `rtp_path`).

Outcomes: ok | dns-failure | reset | timeout | refused | sip-4xx | sip-5xx | no-media |
error. A final 4xx is sip-4xx; 5xx and 6xx (global failures such as 603 Decline) are
sip-5xx. TCP RST/FIN -> reset; ICMP unreachable or connection refused -> refused; no
answer -> timeout; SOCKS5 replies: connection refused -> refused, host/network unreachable
and TTL expired -> timeout (what a tool reports when its own connect times out), others
-> error, with the proxy's reply text. A call set up with no RTP received -> no-media.
Times are milliseconds from time.monotonic(). Exit status is 0 whatever the outcome;
non-zero means bad arguments (2) or a crash (1).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import logging
import sys
import time
import traceback
from typing import Any

from harness.agent_io import cancelled_by_sigterm, emit, ms_since
from harness.apps.sip import sdp
from harness.apps.sip.rtp import RtpEndpoint
from harness.apps.sip.transaction import T1
from harness.apps.sip.ua import IncomingCall, SipFinal, UserAgent
from harness.media.rtpstats import ReceiverStats
from harness.net.resolve import DnsFailure, resolve_a
from harness.net.socks5 import ProxyAddress, Socks5Error

log = logging.getLogger("sip.agent")

SIP_PORT = 5060
DNS_TIMEOUT_S = 2.0
BYE_TIMEOUT_S = 4.0
LATCH_GRACE_S = 0.2  # callee: after the ACK, wait this long for the caller's first RTP
_SOCKS_OUTCOME = {2: "refused", 5: "refused", 3: "timeout", 4: "timeout", 6: "timeout"}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}


def classify(exc: BaseException, stage: str, within: float | None = None) -> tuple[str, str]:
    """(outcome, error text) for an exception raised while doing `stage` (which had
    `within` seconds, for the text of a timeout)."""
    text = f"{stage}: {type(exc).__name__}: {exc}".rstrip(": ")
    if isinstance(exc, SipFinal):
        return ("sip-4xx" if exc.status < 500 else "sip-5xx"), f"{exc.what}: {exc}"
    if isinstance(exc, DnsFailure):
        return "dns-failure", text
    if isinstance(exc, Socks5Error):
        return _SOCKS_OUTCOME.get(exc.code, "error"), f"{stage}: SOCKS5: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", text
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return "reset", text
    if isinstance(exc, asyncio.IncompleteReadError):
        return "reset", f"{stage}: connection closed by peer ({exc})"
    if isinstance(exc, TimeoutError):
        limit = f" within {within:g} s" if within is not None else " in time"
        return "timeout", f"{stage}: no answer{limit}"
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        return "refused", text  # ICMP unreachable / administratively prohibited
    return "error", text


def hostport(text: str, default_port: int = SIP_PORT) -> tuple[str, int]:
    host, colon, port = text.rpartition(":")
    if not colon or not port.isdigit():
        return text, default_port
    return host, int(port)


def new_result(role: str, transport: str) -> dict[str, Any]:
    return {
        "event": "result",
        "role": role,
        "outcome": "error",
        "error": None,
        "registered": False,
        "register_ms": None,
        "setup_ok": False,
        "final_status": None,
        "pdd_ms": None,
        "setup_ms": None,
        "media_s": 0.0,
        "transport": transport,
        "rtp_sent": 0,
        "rx": ReceiverStats().summary(),
    }


def _media_into(result: dict[str, Any], rtp: RtpEndpoint | None) -> None:
    if rtp is None:
        return
    stats = rtp.stats
    result.update(
        rtp_sent=rtp.sender.sent,
        media_s=round(rtp.sender.media_s, 3),
        rx=stats.summary(),
        rx_jitter={
            "mean_ms": round(stats.jitter_mean_ms, 4),
            "max_ms": round(stats.jitter_max_ms, 4),
        },
        rtp_local=f"{rtp.local[0]}:{rtp.local[1]}",
        rtp_remote=f"{rtp.remote[0]}:{rtp.remote[1]}" if rtp.remote else None,
        rtp_path=rtp.via,
    )
    if rtp.latch:
        result["rtp_latched"] = f"{rtp.latched[0]}:{rtp.latched[1]}" if rtp.latched else None


def _add_error(result: dict[str, Any], text: str) -> None:
    result["error"] = f"{result['error']}; {text}" if result["error"] else text


async def _register(ua: UserAgent, result: dict[str, Any], timeout: float) -> None:
    t0 = time.monotonic()
    await ua.register(timeout=timeout)
    result.update(registered=True, register_ms=ms_since(t0))


async def run_caller(args: argparse.Namespace, result: dict[str, Any]) -> None:
    host, port = hostport(args.registrar)
    socks = ProxyAddress.parse(args.socks) if args.socks else None
    udp_socks = socks if args.socks_udp else None
    sip_socks = socks if args.transport == "tcp" else udp_socks
    result["sip_path"] = "direct" if sip_socks is None else f"socks-{args.transport}"
    if socks is not None and udp_socks is None:
        what = "RTP and SIP over UDP go" if args.transport == "udp" else "RTP goes"
        log.warning("proxy without UDP relay (no --socks-udp): %s direct", what)
    ua: UserAgent | None = None
    rtp: RtpEndpoint | None = None
    stage, within = "dns", None
    try:
        address = await resolve_a(host, args.resolver, timeout=DNS_TIMEOUT_S)
        stage, within = "connect", args.register_timeout
        t0 = time.monotonic()
        ua = await UserAgent.open(
            args.user,
            args.domain,
            args.transport,
            args.bind,
            (address, port),
            socks=sip_socks,
            timeout=args.register_timeout,
        )
        result["connect_ms"] = ms_since(t0)
        stage = "REGISTER"
        await _register(ua, result, args.register_timeout)
        stage, within = "media setup", args.setup_timeout
        rtp = await RtpEndpoint.open(args.bind, udp_socks, timeout=args.setup_timeout)
        stage, within = "INVITE", args.setup_timeout
        invite_at = time.monotonic()

        def on_provisional(resp: Any) -> None:
            if resp.status in (180, 183) and result["pdd_ms"] is None:
                result["pdd_ms"] = ms_since(invite_at)

        target = f"sip:{args.callee}@{args.domain}"
        offer = sdp.build(args.bind, rtp.local[1])
        try:
            call = await ua.invite(target, offer, args.setup_timeout, on_provisional)
        except SipFinal as exc:
            result["final_status"] = exc.status
            raise
        result.update(setup_ok=True, final_status=200, setup_ms=ms_since(invite_at))
        if call.answer is None or sdp.PCMU not in call.answer.payload_types:
            stage = "SDP answer"
            result["outcome"] = "error"
            _add_error(result, "200 OK without a PCMU audio answer")
            with contextlib.suppress(Exception):
                await call.bye(BYE_TIMEOUT_S)
            return
        stage = "media"
        rtp.remote = (call.answer.address, call.answer.port)
        call.media_sent = lambda: rtp.sender.sent  # type: ignore[union-attr]
        await rtp.sender.run(call.bye_event, args.duration)
        stage = "BYE"
        try:
            bye = await call.bye(BYE_TIMEOUT_S)
            if (bye.status or 0) >= 300:
                _add_error(result, f"BYE: {bye.status} {bye.reason}")
        except Exception as exc:  # the call happened; a failed hang-up is only noted
            _add_error(result, classify(exc, "BYE")[1])
        await rtp.drain(peer_sent=call.peer_sent)  # packets still in flight count
        if rtp.stats.received:
            result["outcome"] = "ok"
        else:
            result["outcome"] = "no-media"
            _add_error(result, f"no RTP received from the callee (rtp path {rtp.via})")
    except Exception as exc:
        result["outcome"], text = classify(exc, stage, within)
        _add_error(result, text)
    finally:
        _media_into(result, rtp)
        if rtp is not None:
            rtp.close()
        if ua is not None:
            ua.close()


async def _first_of(*events: asyncio.Event, timeout: float) -> bool:
    """Wait until one of `events` is set; False on timeout."""
    waiters = [asyncio.ensure_future(e.wait()) for e in events]
    done, _ = await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    return bool(done)


async def _serve_call(
    args: argparse.Namespace, call: IncomingCall, rtp: RtpEndpoint, result: dict[str, Any]
) -> None:
    """Ring, answer (or reject with --answer-code), then media until the BYE."""
    offer = call.offer
    assert offer is not None
    rtp.remote = (offer.address, offer.port)
    call.ring()
    result["pdd_ms"] = ms_since(call.received_at)
    if args.answer_delay_ms:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.ended.wait(), args.answer_delay_ms / 1000.0)
    if call.cancelled:
        result.update(outcome="error", final_status=487)
        _add_error(result, "caller cancelled before the answer")
        return
    if args.answer_code != 200:
        call.reject(args.answer_code)
        result.update(final_status=args.answer_code, outcome="ok")
        await asyncio.sleep(2 * T1)  # let the proxy's ACK arrive
        return
    call.media_sent = lambda: rtp.sender.sent
    call.answer(sdp.build(args.bind, rtp.local[1]))
    result.update(setup_ok=True, final_status=200, setup_ms=ms_since(call.received_at))
    # Media starts once the call is up (the ACK, or the caller's first packet, which proves
    # it). After the ACK the caller's first packet gets a short grace: behind a proxy the
    # SDP address is unreachable, and frames sent there before latching would be lost
    # (the ACK takes one hop more than the caller's RTP, but may still win the race).
    if not await _first_of(call.acked, rtp.first_packet, call.ended, timeout=64 * T1):
        _add_error(result, "no ACK for the 200 OK")
    await _first_of(rtp.first_packet, call.ended, timeout=LATCH_GRACE_S)
    sender = asyncio.ensure_future(rtp.sender.run(call.ended))
    try:
        remaining = args.deadline - time.monotonic()
        await asyncio.wait_for(call.ended.wait(), max(remaining, 0.0))
    except TimeoutError:
        result["outcome"] = "timeout"
        _add_error(result, f"no BYE within --max-wait {args.max_wait:g} s")
        return
    finally:
        call.ended.set()
        await sender
    await rtp.drain(peer_sent=call.peer_sent)  # packets still in flight count
    if rtp.stats.received:
        result["outcome"] = "ok"
    else:
        result["outcome"] = "no-media"
        _add_error(result, "no RTP received from the caller")


async def run_callee(args: argparse.Namespace, result: dict[str, Any]) -> None:
    args.deadline = time.monotonic() + args.max_wait
    host, port = hostport(args.registrar)
    ua: UserAgent | None = None
    rtp: RtpEndpoint | None = None
    stage = "connect"
    try:
        if args.resolver:
            stage = "dns"
            host = await resolve_a(host, args.resolver, timeout=DNS_TIMEOUT_S)
        ua = await UserAgent.open(
            args.user, args.domain, args.transport, args.bind, (host, port), server=True
        )
        stage = "REGISTER"
        await _register(ua, result, args.register_timeout)
        emit(
            {
                "event": "registered",
                "register_ms": result["register_ms"],
                "contact": ua.contact,
                "transport": args.transport,
            }
        )
        stage = "waiting for INVITE"
        try:
            call = await asyncio.wait_for(ua.incoming.get(), args.deadline - time.monotonic())
        except TimeoutError:
            result["outcome"] = "timeout"
            _add_error(result, f"no INVITE within --max-wait {args.max_wait:g} s")
            return
        if call.offer is None or sdp.PCMU not in call.offer.payload_types:
            call.reject(488)
            result.update(final_status=488, outcome="error")
            _add_error(result, "INVITE without a PCMU audio offer")
            return
        stage = "call"
        rtp = await RtpEndpoint.open(args.bind, latch=True)
        await _serve_call(args, call, rtp, result)
    except Exception as exc:
        result["outcome"], text = classify(exc, stage)
        _add_error(result, text)
    finally:
        _media_into(result, rtp)
        if rtp is not None:
            rtp.close()
        if ua is not None:
            ua.close()


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    """Run the role; SIGTERM (the supervisor stopping us) still yields a result line."""
    result = new_result(args.role, args.transport)
    if await cancelled_by_sigterm(ROLES[args.role](args, result)):
        _add_error(result, "terminated by SIGTERM")
    return result


ROLES = {"caller": run_caller, "callee": run_callee}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="harness.apps.sip.agent", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--registrar", required=True, help="HOST[:PORT] of registrar/proxy")
    common.add_argument("--domain", required=True, help="SIP domain of the accounts")
    common.add_argument("--user", required=True)
    common.add_argument("--bind", required=True, help="own IP address (Via, Contact, SDP)")
    common.add_argument("--transport", choices=("udp", "tcp"), default="udp")
    common.add_argument("--register-timeout", type=float, default=5.0)

    callee = sub.add_parser("callee", parents=[common], help="register and answer one call")
    callee.add_argument("--resolver", help="resolve a registrar name through this server")
    callee.add_argument("--max-wait", type=float, default=30.0, help="seconds, all told")
    callee.add_argument("--answer-delay-ms", type=float, default=0.0)
    callee.add_argument(
        "--answer-code", type=int, default=200, help="final status to answer (e.g. 486)"
    )

    caller = sub.add_parser("caller", parents=[common], help="register and place one call")
    caller.add_argument("--resolver", required=True, help="DNS server for the registrar name")
    caller.add_argument("--callee", required=True, help="user part of the callee's AOR")
    caller.add_argument("--duration", type=float, required=True, help="seconds of media")
    caller.add_argument("--socks", help="HOST:PORT of a SOCKS5 proxy (a tool's client side)")
    caller.add_argument(
        "--socks-udp", action="store_true", help="the proxy relays UDP (UDP ASSOCIATE)"
    )
    caller.add_argument("--setup-timeout", type=float, default=8.0)
    args = parser.parse_args(argv)
    if getattr(args, "socks_udp", False) and not args.socks:
        parser.error("--socks-udp needs --socks")
    if args.role == "callee" and not 200 <= args.answer_code < 700:
        parser.error("--answer-code must be a final status (200-699)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(relativeCreated)9.1f %(name)s %(message)s",
    )
    try:
        result = asyncio.run(_run(args))
    except Exception as exc:  # a bug: still leave a result line, then fail loudly
        traceback.print_exc()
        result = new_result(args.role, args.transport)
        result["outcome"] = "harness-fault"
        result["error"] = f"agent crashed: {type(exc).__name__}: {exc}"
        emit(result)
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
