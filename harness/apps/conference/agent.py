"""A meeting participant, inside: `python -m harness.apps.conference.agent --index I ...`.

Every participant connects to the signalling WebSocket over TLS 443 (the relay of
harness/apps/webrtc/signalling.py, which passes each message to every other connection),
announces itself ({"type": "join"}) and answers each announcement it hears with "here"
addressed to the newcomer, so both of a pair learn of the other whichever connects first.
Messages carry `from` and (but for join) `to`; a participant ignores those meant for
others. Of each pair the lower index offers. Each pair has its own RTCPeerConnection with
relay-only ICE through coturn over --transport (a full mesh: small meetings of WebRTC
clients without an SFU), and each side sends its tone on it.

Once every peer connection is DTLS-connected (or --join-timeout passed) the participant
sends for --duration seconds, stops, says "done" and waits until every participant it has
heard of is done too, so that no stream is counted while its sender still sends; then it
prints {"event": "result"}: per peer, RTP packets sent and received (aiortc's RFC 3550
counters). The app pairs one side's sent with the other's received.

Outcomes: ok (joined, media from every other participant) | no-media (signalling up, a
peer connection or its media missing) | dns-failure | reset | timeout | refused |
tls-alert | error (signalling failed). Times are ms from the agent's start
(time.monotonic()). Exit status 0 whatever the outcome.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import time
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription

from harness.agent_io import cancelled_by_sigterm, emit, ms_since
from harness.apps.webrtc import ice
from harness.apps.webrtc.agent import CODECS, Peer, Signal, candidate_counts, classify, open_signal
from harness.apps.webrtc.netpath import new_loop
from harness.net.resolve import resolve_a
from harness.net.socks5 import ProxyAddress

log = logging.getLogger("conference.agent")

DNS_TIMEOUT_S = 2.0
LINGER_S = 0.3  # after everyone is done, packets still in flight count
SETTLE_S = (0.15, 2.0)  # then until the received counts stop changing: poll period, at most
DONE_SLACK_S = 3.0  # beyond the others' own join timeout and media
POLICY = {"udp": "relay", "tcp": "relay-tcp", "tls": "relay-tls"}  # harness/apps/webrtc/ice.py


class Meeting:
    """One participant's view: its signalling, its peer connections, who is done."""

    def __init__(self, args: argparse.Namespace, sig: Signal, t0: float) -> None:
        self.args, self.sig, self.t0 = args, sig, t0
        self.me: int = args.index
        self.peers: dict[int, Peer] = {}
        self.connected_ms: dict[int, float] = {}
        self.pairs: dict[int, str] = {}  # other -> "relay/udp": read when connected (a
        # peer that hangs up first closes our ICE transport, and aioice forgets the pair)
        self.answers: dict[int, asyncio.Future[str]] = {}
        self.heard: set[int] = set()
        self.done_from: set[int] = set()
        self.changed = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.errors: list[str] = []

    def configuration(self) -> Any:
        attempt = ice.attempts(POLICY[self.args.transport], self.args.turn_ip)[0]
        return attempt.configuration(self.args.turn_user, self.args.turn_password)

    async def send(self, kind: str, to: int | None = None, **extra: Any) -> None:
        await self.sig.send(type=kind, to=to, **{"from": self.me}, **extra)

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def for_me(self, msg: dict[str, Any]) -> bool:
        """From another participant, to everyone or to me (not the relay's "no peer
        connected", nor meant for another)."""
        sender = msg.get("from")
        return isinstance(sender, int) and sender != self.me and msg.get("to") in (None, self.me)

    async def listen(self) -> None:
        """Dispatch signalling messages until the connection closes."""
        while True:
            msg = await self.sig.inbox.get()
            kind, sender = msg.get("type"), msg.get("from")
            if kind == "closed":
                self.errors.append("signalling connection closed")
                self.changed.set()
                return
            if not self.for_me(msg):
                continue
            if kind == "join":
                await self.send("here", to=sender)
            if kind in ("join", "here") and sender not in self.heard:
                self.heard.add(sender)
                if self.me < sender:
                    self.spawn(self.offer(sender))
            elif kind == "offer":
                self.heard.add(sender)
                self.spawn(self.answer(sender, msg["sdp"]))
            elif kind == "answer" and sender in self.answers:
                if not self.answers[sender].done():
                    self.answers[sender].set_result(msg["sdp"])
            elif kind == "done":
                self.heard.add(sender)
                self.done_from.add(sender)
            self.changed.set()

    def _new_peer(self, other: int) -> Peer:
        peer = Peer(RTCPeerConnection(self.configuration()), self.args.codec)
        self.peers[other] = peer

        @peer.pc.on("track")
        def _track(track: Any) -> None:
            peer.remote_audio = asyncio.ensure_future(_drain(track))

        return peer

    async def _await_connected(self, other: int, peer: Peer) -> None:
        await peer.done.wait()
        if peer.pc.connectionState == "connected":
            self.connected_ms[other] = ms_since(self.t0)
            pair = ice.selected_pair(peer.pc, self.args.transport)
            if pair:
                self.pairs[other] = f"{pair['local_type']}/{pair['local_transport']}"
        else:
            self.errors.append(f"p{other}: connection {peer.pc.connectionState}")
        self.changed.set()

    async def offer(self, other: int) -> None:
        peer = self._new_peer(other)
        self.answers[other] = asyncio.get_running_loop().create_future()
        try:
            transceiver = peer.pc.addTransceiver(peer.track, direction="sendrecv")
            peer.prefer_codec(transceiver)
            peer.tap.attach(transceiver.receiver)
            await peer.pc.setLocalDescription(await peer.pc.createOffer())
            await self.send("offer", to=other, sdp=peer.pc.localDescription.sdp)
            sdp = await self.answers[other]
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
            await self._await_connected(other, peer)
        except Exception as exc:
            self.errors.append(f"p{other}: offer: {type(exc).__name__}: {exc}")
            self.changed.set()

    async def answer(self, other: int, sdp: str) -> None:
        if other in self.peers:
            return  # one connection per pair
        peer = self._new_peer(other)
        try:
            await peer.pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
            for transceiver in peer.pc.getTransceivers():
                if transceiver.kind == "audio":
                    transceiver.sender.replaceTrack(peer.track)
                    transceiver.direction = "sendrecv"
                    peer.tap.attach(transceiver.receiver)
            await peer.pc.setLocalDescription(await peer.pc.createAnswer())
            await self.send("answer", to=other, sdp=peer.pc.localDescription.sdp)
            await self._await_connected(other, peer)
        except Exception as exc:
            self.errors.append(f"p{other}: answer: {type(exc).__name__}: {exc}")
            self.changed.set()

    def stuck(self) -> list[str]:
        """Where each peer connection not (yet) connected stands: the evidence of a join
        that timed out (gathering: no TURN allocation; checking: no path through it)."""
        out = []
        for other in range(self.args.participants):
            if other == self.me or other in self.connected_ms:
                continue
            peer = self.peers.get(other)
            if other not in self.heard:
                out.append(f"p{other}: never heard of")
            elif peer is None:
                out.append(f"p{other}: no offer")
            elif peer.pc.iceGatheringState != "complete":
                out.append(f"p{other}: still gathering (no TURN allocation yet)")
            elif not candidate_counts(peer.pc).get("relay"):
                out.append(f"p{other}: no relay candidate (TURN allocation failed)")
            else:
                out.append(f"p{other}: ICE {peer.pc.iceConnectionState}")
        return out

    async def settle(self) -> None:
        """Wait until no more packets arrive: a busy receiver may still be handling ones
        sent before the sender's "done" (which takes the signalling's TCP path)."""
        period, longest = SETTLE_S
        deadline = time.monotonic() + longest
        last = None
        while time.monotonic() < deadline:
            now = [peer.tap.stats.received for peer in self.peers.values()]
            if now == last:
                return
            last = now
            await asyncio.sleep(period)

    def all_done(self) -> bool:
        return self.heard <= self.done_from

    async def wait_until(self, test: Any, timeout: float) -> bool:
        """Wait (woken by every change) until test() holds or timeout seconds pass."""
        deadline = time.monotonic() + timeout
        while not test():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return True

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        for peer in self.peers.values():
            if peer.remote_audio is not None:
                peer.remote_audio.cancel()
            peer.track.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(peer.pc.close(), 3)


async def _drain(track: Any) -> None:
    """Consume received audio: aiortc counts packets only while its receiver runs."""
    with contextlib.suppress(Exception):
        while True:
            await track.recv()


async def link_stats(peer: Peer) -> dict[str, Any]:
    """RTP sent and received on one peer connection (payload bytes from its RtpTap)."""
    rate = CODECS[peer.codec][1]
    out: dict[str, Any] = {"sent": 0, "received": 0, "lost": 0, "bytes": 0, "jitter_ms": None}
    for transceiver in peer.pc.getTransceivers():
        for stat in (await transceiver.sender.getStats()).values():
            if stat.type == "outbound-rtp":
                out["sent"] = stat.packetsSent
        for stat in (await transceiver.receiver.getStats()).values():
            if stat.type == "inbound-rtp":
                out.update(received=stat.packetsReceived, lost=max(stat.packetsLost, 0),
                           jitter_ms=round(stat.jitter * 1000.0 / rate, 3))  # fmt: skip
    out["bytes"] = peer.tap.payload_bytes
    return out


def new_result(args: argparse.Namespace) -> dict[str, Any]:
    return {"event": "result", "index": args.index, "outcome": "error", "error": None,
            "signalling_ok": False, "signalling_ms": None, "joined": False, "join_ms": None,
            "heard": [], "media_s": 0.0, "links": {}}  # fmt: skip


async def participate(args: argparse.Namespace, result: dict[str, Any]) -> None:
    t0 = time.monotonic()
    others = args.participants - 1
    sig: Signal | None = None
    meeting: Meeting | None = None
    stage, within = "dns", None
    try:
        host = args.signal_host
        if not args.socks:  # through a proxy, the proxy resolves (as socks5h)
            host = await resolve_a(host, args.resolver, timeout=DNS_TIMEOUT_S)
        stage, within = "signalling", args.setup_timeout
        sig = await open_signal(args, host)
        result.update(signalling_ok=True, signalling_ms=ms_since(t0))
        meeting = Meeting(args, sig, t0)
        listener = asyncio.ensure_future(meeting.listen())
        meeting.tasks.add(listener)
        await meeting.send("join")
        stage = "join"
        left = args.join_timeout - (time.monotonic() - t0)
        joined = await meeting.wait_until(lambda: len(meeting.connected_ms) == others, left)
        if joined:
            result.update(joined=True, join_ms=max(meeting.connected_ms.values()))
        stuck = meeting.stuck()
        stage = "media"
        started = time.monotonic()
        await asyncio.sleep(args.duration)
        for peer in meeting.peers.values():
            peer.track.stop()
        result["media_s"] = round(time.monotonic() - started, 3)
        await meeting.send("done")
        # The others may still be joining or sending: wait for their hang-up (bounded).
        await meeting.wait_until(meeting.all_done, args.join_timeout + args.duration + DONE_SLACK_S)
        await asyncio.sleep(LINGER_S)
        await meeting.settle()
        stage = "stats"
        for other, peer in sorted(meeting.peers.items()):
            link = await link_stats(peer)
            link.update(connected_ms=meeting.connected_ms.get(other), pair=meeting.pairs.get(other))
            result["links"][str(other)] = link
        result["heard"] = sorted(meeting.heard)
        got = [o for o, link in result["links"].items() if link["received"]]
        if joined and len(got) == others:
            result["outcome"] = "ok"
        else:
            result["outcome"] = "no-media"
            missing = [f"p{o}" for o in range(args.participants)
                       if o != args.index and str(o) not in got]  # fmt: skip
            problems = [f"no media from {', '.join(missing)}"] if missing else []
            if not joined:
                problems.insert(0, f"{len(meeting.connected_ms)}/{others} peers connected "
                                   f"within --join-timeout {args.join_timeout:g} s "
                                   f"({', '.join(stuck)})")  # fmt: skip
            result["error"] = "; ".join(problems + meeting.errors)
    except Exception as exc:
        result["outcome"], result["error"] = classify(exc, stage, within)
    finally:
        if meeting is not None:
            await meeting.close()
        if sig is not None:
            await sig.close()


async def _run(args: argparse.Namespace) -> dict[str, Any]:
    result = new_result(args)
    if await cancelled_by_sigterm(participate(args, result)):
        result["error"] = f"{result['error'] or ''}; terminated by SIGTERM".lstrip("; ")
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="harness.apps.conference.agent", description=__doc__)
    parser.add_argument("--index", type=int, required=True, help="this participant, from 0")
    parser.add_argument("--participants", type=int, required=True)
    parser.add_argument("--signal-host", required=True, help="name of the signalling server")
    parser.add_argument("--sni", required=True, help="TLS server name of the signalling")
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--ca", required=True, help="the run CA (trust anchor)")
    parser.add_argument("--resolver", required=True, help="DNS server for --signal-host")
    parser.add_argument("--turn-ip", required=True)
    parser.add_argument("--turn-user", required=True)
    parser.add_argument("--turn-password", required=True)
    parser.add_argument("--transport", choices=tuple(POLICY), default="udp", help="to coturn")
    parser.add_argument("--codec", choices=tuple(CODECS), default="opus")
    parser.add_argument("--setup-timeout", type=float, default=8.0, help="signalling connect")
    parser.add_argument("--join-timeout", type=float, default=10.0, help="start -> all connected")
    parser.add_argument("--duration", type=float, required=True, help="seconds of media")
    parser.add_argument("--socks", help="HOST:PORT of a SOCKS5 proxy for every TCP connection")
    parser.add_argument("--socks-udp", action="store_true", help="TURN over UDP via the proxy")
    args = parser.parse_args(argv)
    if not 0 <= args.index < args.participants:
        parser.error("--index must be below --participants")
    if args.socks_udp and not args.socks:
        parser.error("--socks-udp needs --socks")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(relativeCreated)9.1f %(name)s %(message)s")  # fmt: skip
    proxy = ProxyAddress.parse(args.socks) if args.socks else None
    loop = new_loop(proxy, args.ca, udp=args.socks_udp)
    try:
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            result = runner.run(_run(args))
        result["via_proxy"] = list(loop.via)
    except Exception as exc:
        log.exception("agent crashed")
        result = new_result(args)
        result.update(outcome="harness-fault", error=f"agent crashed: {type(exc).__name__}: {exc}")
        emit(result)
        return 1
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
