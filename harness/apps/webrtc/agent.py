"""WebRTC call agents run inside a trial's hosts: `python -m harness.apps.webrtc.agent ...`.

`callee` (outside) connects to the signalling server, prints {"event": "ready"}, answers
every offer with a fresh RTCPeerConnection (host candidates only), sends its tone until
the caller's "bye", then sends its own figures back over signalling and prints
{"event": "result"}. `caller` (inside) resolves the signalling name through --resolver
(or lets the proxy resolve it), connects, and tries the ICE attempts of --policy in order
(harness/apps/webrtc/ice.py): each gathers its candidates (aiortc does not trickle; aioice
bounds gathering at 5 s, which an unanswered STUN/TURN server over UDP takes in full), then
must get from offer to DTLS done within --attempt-timeout; on the first attempt whose
DTLS handshake completes it sends its tone for --duration seconds, hangs up and prints
{"event": "result"} holding both sides' figures.

With --socks every TCP connection of the caller (signalling, TURN over TCP/TLS) goes
through SOCKS5 CONNECT (harness/apps/webrtc/netpath.py); with --socks-udp also TURN over
UDP (UDP ASSOCIATE). Host and srflx candidates always go direct (aioice binds its own
sockets), as with a browser whose proxy does not cover WebRTC's non-relayed UDP.

Outcomes: ok | dns-failure | reset | timeout | refused | tls-alert | no-media | error.
Signalling failing is dns-failure/reset/timeout/refused/tls-alert with setup_ok false; an
answer received but no attempt connecting (ICE or DTLS failed) is no-media with setup_ok
true, as a SIP call answered with no RTP; connected with no audio received is no-media too.
Times are milliseconds from time.monotonic(). Exit status 0 whatever the outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import ssl
import sys
import time
import traceback
from typing import Any

from aiortc import RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidHandshake

from harness.agent_io import cancelled_by_sigterm, emit, ms_since
from harness.apps.sip.agent import classify as sip_classify
from harness.apps.webrtc import ice
from harness.apps.webrtc.media import (
    PROBE_LABEL,
    PTIME_S,
    DelayProbes,
    RtpTap,
    ToneTrack,
)
from harness.apps.webrtc.netpath import new_loop
from harness.apps.webrtc.signalling import PATH
from harness.net.resolve import resolve_a
from harness.net.socks5 import ProxyAddress

log = logging.getLogger("webrtc.agent")

DNS_TIMEOUT_S = 2.0
LINGER_S = 0.3  # after the hang-up, packets still in flight count
STATS_WAIT_S = 3.0
CODECS = {"opus": ("audio/opus", 48000), "pcmu": ("audio/PCMU", 8000)}


class SignallingError(Exception):
    """The signalling server said something went wrong (no peer connected)."""


def classify(exc: BaseException, stage: str, within: float | None = None) -> tuple[str, str]:
    if isinstance(exc, ssl.SSLError):
        return "tls-alert", f"{stage}: TLS: {exc}"
    if isinstance(exc, InvalidHandshake):
        return "error", f"{stage}: WebSocket handshake: {exc}"
    return sip_classify(exc, stage, within)


def _add_error(result: dict[str, Any], text: str) -> None:
    result["error"] = f"{result['error']}; {text}" if result["error"] else text


def new_result(role: str, policy: str, codec: str) -> dict[str, Any]:
    return {
        "event": "result",
        "role": role,
        "outcome": "error",
        "error": None,
        "policy": policy,
        "codec": codec,
        "signalling_ok": False,
        "signalling_ms": None,
        "setup_ok": False,
        "answer_ms": None,
        "attempts": [],
        "winner": None,
        "ice_state": "new",
        "ice_connected_ms": None,
        "connected_ms": None,
        "dtls_done": False,
        "selected_pair": None,
        "media_s": 0.0,
        "rtp_sent": 0,
        "rx": None,
        "owd": None,
        "peer": None,
    }


class Signal:
    """The caller's or callee's signalling connection: JSON in, JSON out."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                with contextlib.suppress(ValueError):
                    await self.inbox.put(json.loads(raw))
        finally:
            await self.inbox.put({"type": "closed"})

    async def send(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def expect(self, kind: str, attempt: int | None = None) -> dict[str, Any]:
        while True:
            message = await self.inbox.get()
            if message.get("type") == "closed":
                raise ConnectionResetError("signalling connection closed")
            if message.get("type") == "error":
                raise SignallingError(message.get("error", "signalling error"))
            if message.get("type") == kind and attempt in (None, message.get("attempt")):
                return message

    async def close(self) -> None:
        self.reader.cancel()
        with contextlib.suppress(Exception):
            await self.ws.close()


async def open_signal(args: argparse.Namespace, host: str) -> Signal:
    context = ssl.create_default_context(cafile=args.ca)
    uri = f"wss://{args.sni}:{args.port}{PATH}"
    ws = await connect(
        uri,
        host=host,
        port=args.port,
        ssl=context,
        server_hostname=args.sni,
        proxy=None,
        compression=None,
        open_timeout=args.setup_timeout,
    )
    return Signal(ws)


class Peer:
    """One RTCPeerConnection with our tone, the delay probes and state timestamps."""

    def __init__(self, pc: RTCPeerConnection, codec: str) -> None:
        self.pc, self.codec = pc, codec
        self.track = ToneTrack()
        self.probes = DelayProbes()
        self.t0 = time.monotonic()
        self.ice_connected_ms: float | None = None
        self.connected_ms: float | None = None
        self.done = asyncio.Event()  # connected or failed
        self.remote_audio: asyncio.Task[None] | None = None
        self.tap = RtpTap(CODECS[codec][1])

        @pc.on("iceconnectionstatechange")
        def _ice() -> None:
            if pc.iceConnectionState in ("completed", "connected") and not self.ice_connected_ms:
                self.ice_connected_ms = ms_since(self.t0)
            if pc.iceConnectionState == "failed":
                self.done.set()

        @pc.on("connectionstatechange")
        def _conn() -> None:
            if pc.connectionState == "connected" and self.connected_ms is None:
                self.connected_ms = ms_since(self.t0)
            if pc.connectionState in ("connected", "failed", "closed"):
                self.done.set()

        @pc.on("track")
        def _track(track: Any) -> None:
            self.remote_audio = asyncio.ensure_future(_drain(track))

        @pc.on("datachannel")
        def _channel(channel: Any) -> None:
            if channel.label == PROBE_LABEL:
                self.probes.attach(channel)

    def prefer_codec(self, transceiver: Any) -> None:
        mime = CODECS[self.codec][0].lower()
        codecs = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() == mime])

    async def media_stats(self) -> dict[str, Any]:
        """Sent packets and RFC 3550 receive figures (jitter converted to ms)."""
        rate = CODECS[self.codec][1]
        out: dict[str, Any] = {"rtp_sent": 0, "rx": None}
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind != "audio":
                continue
            for stat in (await transceiver.sender.getStats()).values():
                if stat.type == "outbound-rtp":
                    out["rtp_sent"] = stat.packetsSent
            for stat in (await transceiver.receiver.getStats()).values():
                if stat.type == "inbound-rtp":
                    expected = stat.packetsReceived + max(stat.packetsLost, 0)
                    out["rx"] = {
                        "received": stat.packetsReceived,
                        "lost": stat.packetsLost,
                        "expected": expected,
                        "jitter_ms": round(stat.jitter * 1000.0 / rate, 4),
                        **self.tap.summary(),
                    }
        return out

    async def close(self) -> None:
        self.track.stop()
        if self.remote_audio is not None:
            self.remote_audio.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.pc.close(), 3)


async def _drain(track: Any) -> None:
    """Consume received audio (decoded frames are dropped; counting happens in aiortc and
    in the RtpTap)."""
    with contextlib.suppress(Exception):
        while True:
            await track.recv()


def candidate_counts(pc: RTCPeerConnection) -> dict[str, int]:
    conn = ice.ice_connection(pc)
    counts: dict[str, int] = {}
    for cand in getattr(conn, "local_candidates", []) if conn is not None else []:
        counts[cand.type] = counts.get(cand.type, 0) + 1
    return counts


async def _try(
    args: argparse.Namespace, sig: Signal, n: int, attempt: ice.Attempt, record: dict[str, Any]
) -> Peer:
    """Offer, answer and wait until the DTLS handshake is done (connectionState)."""
    pc = RTCPeerConnection(attempt.configuration(args.turn_user, args.turn_password))
    peer = Peer(pc, args.codec)
    try:
        transceiver = pc.addTransceiver(peer.track, direction="sendrecv")
        peer.prefer_codec(transceiver)
        peer.tap.attach(transceiver.receiver)
        peer.probes.attach(pc.createDataChannel(PROBE_LABEL, ordered=False, maxRetransmits=0))
        await pc.setLocalDescription(await pc.createOffer())
        record["gather_ms"] = ms_since(peer.t0)
        record["candidates"] = candidate_counts(pc)
        await sig.send(type="offer", attempt=n, sdp=pc.localDescription.sdp)
        await asyncio.wait_for(_complete(sig, n, peer, record), args.attempt_timeout)
        return peer
    except BaseException:
        record["ice_state"] = pc.iceConnectionState
        await peer.close()
        raise


async def _complete(sig: Signal, n: int, peer: Peer, record: dict[str, Any]) -> None:
    sent = time.monotonic()
    answer = await sig.expect("answer", n)
    record.update(answered=True, answer_ms=ms_since(sent))
    await peer.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
    await peer.done.wait()


async def _connect(args: argparse.Namespace, sig: Signal, result: dict[str, Any]) -> Peer | None:
    """Try each attempt of the policy in order; the first that connects wins."""
    for n, attempt in enumerate(ice.attempts(args.policy, args.turn_ip)):
        record: dict[str, Any] = {"name": attempt.name, "turn_url": attempt.turn_url,
                                  "relay_only": attempt.relay_only, "answered": False}  # fmt: skip
        result["attempts"].append(record)
        t0 = time.monotonic()
        peer: Peer | None = None
        try:
            peer = await _try(args, sig, n, attempt, record)
        except TimeoutError:
            record["outcome"] = "timeout"
        record["ms"] = ms_since(t0)
        if record["answered"]:
            result.update(setup_ok=True)
            if result["answer_ms"] is None:  # offer sent -> answer: the signalling round trip
                result["answer_ms"] = record.get("answer_ms")
        if peer is not None:
            record["ice_state"] = peer.pc.iceConnectionState
            if peer.pc.connectionState == "connected":
                record["outcome"] = "connected"
                return peer
            record["outcome"] = peer.pc.connectionState
            await peer.close()
        log.info("attempt %d (%s) %s", n, attempt.name, record["outcome"])
        with contextlib.suppress(Exception):
            await sig.send(type="abandon", attempt=n)
    return None


def _summarize_peer(peer: Peer, turn_transport: str | None) -> dict[str, Any]:
    return {
        "ice_state": peer.pc.iceConnectionState,
        "ice_connected_ms": peer.ice_connected_ms,
        "connected_ms": peer.connected_ms,
        "dtls_done": peer.pc.connectionState == "connected" or peer.connected_ms is not None,
        "selected_pair": ice.selected_pair(peer.pc, turn_transport),
    }


async def run_caller(args: argparse.Namespace, result: dict[str, Any]) -> None:
    sig: Signal | None = None
    peer: Peer | None = None
    bye_sent = False
    stage, within = "dns", None
    try:
        host = args.signal_host
        if not args.socks:  # through a proxy, the proxy resolves (as socks5h)
            host = await resolve_a(host, args.resolver, timeout=DNS_TIMEOUT_S)
        stage, within = "signalling", args.setup_timeout
        t0 = time.monotonic()
        sig = await open_signal(args, host)
        result.update(signalling_ok=True, signalling_ms=ms_since(t0))
        stage, within = "ICE", args.attempt_timeout
        peer = await _connect(args, sig, result)
        if peer is None:
            result["outcome"] = "no-media" if result["setup_ok"] else "timeout"
            tried = ", ".join(f"{a['name']}: {a['outcome']}" for a in result["attempts"])
            _add_error(result, f"no ICE attempt connected ({tried})")
            return
        winner = result["attempts"][-1]
        result.update(winner=winner["name"], **_summarize_peer(peer, winner["name"]))
        stage = "media"
        stop = asyncio.Event()
        probing = asyncio.ensure_future(peer.probes.run(stop))
        started = time.monotonic()
        await asyncio.sleep(args.duration)
        peer.track.stop()
        stop.set()
        await probing
        result["media_s"] = round(time.monotonic() - started, 3)
        await sig.send(type="bye")
        bye_sent = True
        await asyncio.sleep(LINGER_S)
        result.update(await peer.media_stats(), owd=peer.probes.summary())
        stage = "peer stats"
        with contextlib.suppress(TimeoutError):
            theirs = await asyncio.wait_for(sig.expect("stats"), STATS_WAIT_S)
            result["peer"] = theirs.get("result")
        if result["rx"] and result["rx"]["received"]:
            result["outcome"] = "ok"
        else:
            result["outcome"] = "no-media"
            _add_error(result, "connected, but no audio received from the callee")
    except Exception as exc:
        result["outcome"], text = classify(exc, stage, within)
        _add_error(result, text)
    finally:
        if peer is not None:
            await peer.close()
        if sig is not None:
            if not bye_sent:  # the callee gives up at once instead of at --max-wait
                with contextlib.suppress(Exception):
                    await sig.send(type="bye")
            await sig.close()


async def _answer(args: argparse.Namespace, offer: dict[str, Any]) -> Peer:
    pc = RTCPeerConnection(ice.peer_configuration())
    peer = Peer(pc, args.codec)
    await pc.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
    for transceiver in pc.getTransceivers():
        if transceiver.kind == "audio":
            transceiver.sender.replaceTrack(peer.track)
            transceiver.direction = "sendrecv"
            peer.tap.attach(transceiver.receiver)
    await pc.setLocalDescription(await pc.createAnswer())
    return peer


async def run_callee(args: argparse.Namespace, result: dict[str, Any]) -> None:
    deadline = time.monotonic() + args.max_wait
    sig: Signal | None = None
    peer: Peer | None = None
    stage = "signalling"
    try:
        sig = await open_signal(args, args.signal_host)
        result.update(signalling_ok=True)
        emit({"event": "ready"})
        stop = asyncio.Event()
        probing: asyncio.Future[None] | None = None
        while True:
            stage = "waiting for the caller"
            message = await asyncio.wait_for(sig.inbox.get(), max(deadline - time.monotonic(), 0))
            kind = message.get("type")
            if kind == "closed":
                raise ConnectionResetError("signalling connection closed")
            if kind == "offer":
                if peer is not None:
                    await peer.close()
                stage = "answer"
                peer = await _answer(args, message)
                result["attempts"].append({"attempt": message.get("attempt")})
                await sig.send(type="answer", attempt=message.get("attempt"),
                               sdp=peer.pc.localDescription.sdp)  # fmt: skip
                result["setup_ok"] = True
                if probing is None:  # late binding wanted: probes go on the current peer
                    probing = asyncio.ensure_future(_probe_current(lambda: peer, stop))  # noqa: B023
            elif kind == "abandon" and peer is not None:
                await peer.close()
                peer = None
            elif kind == "bye":
                break
        stop.set()
        if peer is None:
            result["outcome"] = "no-media"
            _add_error(result, "hang-up without a connected call")
            return
        peer.track.stop()
        if probing is not None:
            await probing
        await asyncio.sleep(LINGER_S)
        result.update(_summarize_peer(peer, None))
        result.update(await peer.media_stats(), owd=peer.probes.summary())
        ok = bool(result["rx"] and result["rx"]["received"])
        result["outcome"] = "ok" if ok else "no-media"
        if not ok:
            _add_error(result, "no audio received from the caller")
        mine = {k: v for k, v in result.items() if k != "event"}
        with contextlib.suppress(Exception):
            await sig.send(type="stats", result=mine)
    except TimeoutError:
        result["outcome"] = "timeout"
        _add_error(result, f"{stage}: nothing within --max-wait {args.max_wait:g} s")
    except Exception as exc:
        result["outcome"], text = classify(exc, stage)
        _add_error(result, text)
    finally:
        if peer is not None:
            await peer.close()
        if sig is not None:
            await sig.close()


async def _probe_current(current: Any, stop: asyncio.Event) -> None:
    """Send the callee's delay probes on whichever peer connection is current."""
    while not stop.is_set():
        peer = current()
        if peer is not None:
            peer.probes.send_once()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PTIME_S)


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    result = new_result(args.role, getattr(args, "policy", "all"), args.codec)
    if await cancelled_by_sigterm(ROLES[args.role](args, result)):
        _add_error(result, "terminated by SIGTERM")
    return result


ROLES = {"caller": run_caller, "callee": run_callee}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="harness.apps.webrtc.agent", description=__doc__)
    sub = parser.add_subparsers(dest="role", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--signal-host", required=True, help="name or IP of the server")
    common.add_argument("--sni", required=True, help="TLS server name of the signalling")
    common.add_argument("--port", type=int, default=443)
    common.add_argument("--ca", required=True, help="the run CA (trust anchor)")
    common.add_argument("--codec", choices=tuple(CODECS), default="opus")
    common.add_argument("--setup-timeout", type=float, default=8.0)

    callee = sub.add_parser("callee", parents=[common], help="answer the caller's offers")
    callee.add_argument("--max-wait", type=float, default=60.0, help="seconds, all told")

    caller = sub.add_parser("caller", parents=[common], help="place one call")
    caller.add_argument("--resolver", required=True, help="DNS server for --signal-host")
    caller.add_argument("--policy", choices=ice.POLICIES, default="all")
    caller.add_argument("--turn-ip", required=True)
    caller.add_argument("--turn-user", required=True)
    caller.add_argument("--turn-password", required=True)
    caller.add_argument("--attempt-timeout", type=float, default=4.0)
    caller.add_argument("--duration", type=float, required=True, help="seconds of media")
    caller.add_argument("--socks", help="HOST:PORT of a SOCKS5 proxy for every TCP connection")
    caller.add_argument(
        "--socks-udp", action="store_true", help="the proxy relays UDP: TURN over UDP uses it"
    )
    args = parser.parse_args(argv)
    if getattr(args, "socks_udp", False) and not args.socks:
        parser.error("--socks-udp needs --socks")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(relativeCreated)9.1f %(name)s %(message)s")  # fmt: skip
    proxy = ProxyAddress.parse(args.socks) if getattr(args, "socks", None) else None
    loop = new_loop(proxy, args.ca, udp=bool(getattr(args, "socks_udp", False)))
    try:
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            result = runner.run(_run(args))
        result["via_proxy"] = list(loop.via)
    except Exception as exc:
        traceback.print_exc()
        result = new_result(args.role, getattr(args, "policy", "all"), args.codec)
        result["outcome"] = "harness-fault"
        result["error"] = f"agent crashed: {type(exc).__name__}: {exc}"
        emit(result)
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
