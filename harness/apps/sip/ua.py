"""An asyncio SIP user agent, the RFC 3261 subset a call needs: REGISTER (no auth), INVITE
with an SDP offer, 1xx/2xx/3xx-6xx, ACK, BYE; as callee: 180, 200 (retransmitted on UDP
until the ACK), BYE, CANCEL.

Every request goes to the registrar, which is also the proxy (an outbound proxy). The
proxy does not Record-Route, so in-dialog requests carry the peer's Contact as R-URI and the
proxy relays them there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from harness.apps.sip import sdp
from harness.apps.sip.message import (
    SipMessage,
    new_branch,
    new_call_id,
    new_tag,
    response,
    uri_of,
)
from harness.apps.sip.transaction import T1, T2, ClientTransaction
from harness.apps.sip.transport import Address, Inbound, TcpTransport, Transport, UdpTransport
from harness.net.socks5 import ProxyAddress

log = logging.getLogger("sip.ua")

USER_AGENT = "gatecrash-sip/1"
ALLOW = "INVITE, ACK, BYE, CANCEL, OPTIONS"
# How many RTP packets a side sent, in its BYE or in its answer to one: the peer stops
# draining the stream once all of them are in instead of waiting out a quiet spell. Real
# user agents say it in an RTCP BYE with a final sender report (RFC 3550 6.4.1, 6.6); ours
# send no RTCP, so the hang-up carries it, as an extension header proxies pass on.
MEDIA_SENT = "X-Gatecrash-Media-Sent"


class _MediaCount:
    """Both sides of a dialog: what we sent (read when we hang up or answer a BYE) and
    what the peer said it sent."""

    media_sent: Callable[[], int] | None = None
    peer_sent: int | None = None

    def media_headers(self) -> list[tuple[str, str]]:
        return [] if self.media_sent is None else [(MEDIA_SENT, str(self.media_sent()))]

    def note_peer(self, msg: SipMessage) -> None:
        with contextlib.suppress(TypeError, ValueError):
            self.peer_sent = int(msg.get(MEDIA_SENT))  # type: ignore[arg-type]


class SipFinal(Exception):
    """A request ended in a final response >= 300."""

    def __init__(self, response: SipMessage, what: str) -> None:
        self.status = response.status or 0
        self.reason = response.reason
        super().__init__(f"{self.status} {self.reason}")
        self.what = what


class UserAgent:
    """One account's UA on one transport."""

    def __init__(self, user: str, domain: str, transport: str) -> None:
        self.user, self.domain = user, domain
        self.transport_name = transport.upper()
        self.transport: Transport
        self._tx: dict[tuple[str, str], ClientTransaction] = {}
        self._calls: dict[str, OutgoingCall | IncomingCall] = {}
        self.incoming: asyncio.Queue[IncomingCall] = asyncio.Queue()
        self.failure: BaseException | None = None
        self._cseq = 0

    @classmethod
    async def open(
        cls,
        user: str,
        domain: str,
        transport: str,
        bind_ip: str,
        proxy: Address,
        *,
        socks: ProxyAddress | None = None,
        server: bool = False,
        timeout: float = 10.0,
    ) -> UserAgent:
        """Open the transport towards `proxy`. `server` (callee): UDP socket left
        unconnected, TCP also listening for the proxy's connection to our Contact."""
        self = cls(user, domain, transport)
        if self.transport_name == "TCP":
            self.transport = await TcpTransport.open(
                bind_ip, proxy, self._on_inbound, self._on_failure, socks, server, timeout
            )
        else:
            self.transport = await UdpTransport.open(
                bind_ip, proxy, self._on_inbound, self._on_failure, socks, not server, timeout
            )
        return self

    # -- addressing -------------------------------------------------------------------

    @property
    def aor(self) -> str:
        return f"sip:{self.user}@{self.domain}"

    @property
    def contact(self) -> str:
        host, port = self.transport.local
        param = ";transport=tcp" if self.transport_name == "TCP" else ""
        return f"<sip:{self.user}@{host}:{port}{param}>"

    def _via(self, branch: str) -> str:
        host, port = self.transport.local
        return f"SIP/2.0/{self.transport_name} {host}:{port};rport;branch={branch}"

    def next_cseq(self) -> int:
        self._cseq += 1
        return self._cseq

    def new_request(
        self,
        method: str,
        uri: str,
        *,
        call_id: str,
        cseq: int,
        from_tag: str,
        to: str,
        body: bytes = b"",
        extra: list[tuple[str, str]] | None = None,
    ) -> SipMessage:
        msg = SipMessage(method=method, uri=uri, body=body)
        msg.add("Via", self._via(new_branch()))
        msg.add("Max-Forwards", "70")
        msg.add("From", f"<{self.aor}>;tag={from_tag}")
        msg.add("To", to)
        msg.add("Call-ID", call_id)
        msg.add("CSeq", f"{cseq} {method}")
        msg.add("User-Agent", USER_AGENT)
        for name, value in extra or []:
            msg.add(name, value)
        return msg

    # -- sending ----------------------------------------------------------------------

    def send_raw(self, data: bytes) -> None:
        log.info("-> %s", data.split(b"\r\n", 1)[0].decode(errors="replace"))
        self.transport.send(data)

    def start_transaction(self, request: SipMessage) -> ClientTransaction:
        if self.failure is not None:
            raise self.failure
        tx = ClientTransaction(request, self.send_raw, self.transport.reliable)
        self._tx[tx.key] = tx
        tx.start()
        return tx

    async def final_response(self, tx: ClientTransaction, timeout: float) -> SipMessage:
        """Wait for the final response (provisional ones are skipped); TimeoutError."""
        async with asyncio.timeout(timeout):
            while True:
                resp = await tx.next_response()
                if (resp.status or 0) >= 200:
                    return resp

    async def register(self, expires: int = 300, timeout: float = 5.0) -> SipMessage:
        """REGISTER our Contact; the 2xx response, SipFinal otherwise."""
        req = self.new_request(
            "REGISTER",
            f"sip:{self.domain}",
            call_id=new_call_id(self.transport.local[0]),
            cseq=self.next_cseq(),
            from_tag=new_tag(),
            to=f"<{self.aor}>",
            extra=[("Contact", self.contact), ("Expires", str(expires))],
        )
        tx = self.start_transaction(req)
        try:
            resp = await self.final_response(tx, timeout)
        finally:
            self._tx.pop(tx.key, None)
            tx.stop()
        if (resp.status or 0) >= 300:
            raise SipFinal(resp, "REGISTER")
        return resp

    async def invite(
        self,
        target: str,
        offer: bytes,
        timeout: float,
        on_provisional: Callable[[SipMessage], None] | None = None,
    ) -> OutgoingCall:
        """Call `target`; returns the established call (ACK sent) or raises SipFinal /
        TimeoutError (after a CANCEL if the callee was ringing) / a transport error."""
        call = OutgoingCall(self, target, offer)
        self._calls[call.call_id] = call
        tx = self.start_transaction(call.invite)
        call.tx = tx
        try:
            async with asyncio.timeout(timeout):
                while True:
                    resp = await tx.next_response()
                    status = resp.status or 0
                    if status < 200:
                        if on_provisional is not None:
                            on_provisional(resp)
                        continue
                    if status >= 300:
                        raise SipFinal(resp, "INVITE")
                    call.established(resp)
                    return call
        except TimeoutError:
            if tx.provisional:
                call.cancel()
            raise

    # -- receiving --------------------------------------------------------------------

    def _on_failure(self, exc: BaseException) -> None:
        """The transport failed (TCP reset/FIN, ICMP error): every pending transaction
        learns it; later sends fail with it."""
        log.warning("transport failure: %r", exc)
        self.failure = exc
        for tx in list(self._tx.values()):
            tx.on_error(exc)

    def _on_inbound(self, inb: Inbound) -> None:
        if inb.message.is_request:
            self._on_request(inb)
        else:
            self._on_response(inb.message)

    def _on_response(self, resp: SipMessage) -> None:
        try:
            key = (resp.top_via().branch, resp.cseq[1])
        except ValueError:
            return
        tx = self._tx.get(key)
        if tx is not None and tx.on_response(resp):
            return
        call = self._calls.get(resp.call_id)
        status = resp.status or 0
        if isinstance(call, OutgoingCall) and resp.cseq[1] == "INVITE" and 200 <= status < 300:
            call.resend_ack()  # a retransmitted 2xx: our ACK was lost (RFC 3261 13.2.2.4)

    def _on_request(self, inb: Inbound) -> None:
        req = inb.message
        method = req.method or ""
        call = self._calls.get(req.call_id)
        if method == "ACK":
            if isinstance(call, IncomingCall):
                call.on_ack()
            return
        if method == "INVITE":
            if isinstance(call, IncomingCall):
                call.on_retransmission(inb)
            elif self._busy():
                inb.reply(response(req, 486, to_tag=new_tag()).encode())
            else:
                incoming = IncomingCall(self, inb)
                self._calls[req.call_id] = incoming
                self.incoming.put_nowait(incoming)
            return
        if method == "BYE":
            if call is None:
                inb.reply(response(req, 481).encode())
                return
            inb.reply(response(req, 200, headers=call.media_headers()).encode())
            call.note_peer(req)
            call.on_bye()
            return
        if method == "CANCEL" and isinstance(call, IncomingCall):
            inb.reply(response(req, 200).encode())
            call.on_cancel()
            return
        if method == "OPTIONS":
            inb.reply(response(req, 200, to_tag=new_tag(), headers=[("Allow", ALLOW)]).encode())
            return
        inb.reply(response(req, 501 if method != "CANCEL" else 481).encode())

    def _busy(self) -> bool:
        """One call at a time: a second INVITE while one is up gets 486."""
        return any(
            isinstance(c, IncomingCall) and not c.ended.is_set() for c in self._calls.values()
        )

    def close(self) -> None:
        for tx in self._tx.values():
            tx.stop()
        for call in self._calls.values():
            call.stop_timers()
        with contextlib.suppress(Exception):
            self.transport.close()


class OutgoingCall(_MediaCount):
    """The caller's dialog (RFC 3261 12.1.2)."""

    def __init__(self, ua: UserAgent, target: str, offer: bytes) -> None:
        self.ua = ua
        self.call_id = new_call_id(ua.transport.local[0])
        self.local_tag = new_tag()
        self.remote_to = f"<{target}>"
        self.invite = ua.new_request(
            "INVITE",
            target,
            call_id=self.call_id,
            cseq=ua.next_cseq(),
            from_tag=self.local_tag,
            to=self.remote_to,
            body=offer,
            extra=[
                ("Contact", ua.contact),
                ("Allow", ALLOW),
                ("Content-Type", "application/sdp"),
            ],
        )
        self.tx: ClientTransaction | None = None
        self.answer: sdp.AudioOffer | None = None
        self.remote_target = target
        self._ack: bytes | None = None
        self.bye_event = asyncio.Event()  # the callee hung up

    def established(self, ok: SipMessage) -> None:
        """Take the 2xx: dialog state, the SDP answer, then ACK (a new transaction)."""
        self.remote_to = ok.get("to") or self.remote_to
        contact = ok.get("contact")
        if contact:
            self.remote_target = uri_of(contact)
        with contextlib.suppress(ValueError):
            self.answer = sdp.parse_audio(ok.body)
        ack = self.ua.new_request(
            "ACK",
            self.remote_target,
            call_id=self.call_id,
            cseq=self.invite.cseq[0],
            from_tag=self.local_tag,
            to=self.remote_to,
        )
        self._ack = ack.encode()
        self.resend_ack()

    def resend_ack(self) -> None:
        if self._ack is not None:
            with contextlib.suppress(OSError):
                self.ua.send_raw(self._ack)

    def cancel(self) -> None:
        """Best-effort CANCEL of a ringing INVITE we gave up on (RFC 3261 9.1)."""
        cancel = SipMessage(method="CANCEL", uri=self.invite.uri)
        cancel.add("Via", self.invite.get_all("via")[0])
        cancel.add("Max-Forwards", "70")
        for name in ("From", "To", "Call-ID"):
            cancel.add(name, self.invite.get(name) or "")
        cancel.add("CSeq", f"{self.invite.cseq[0]} CANCEL")
        with contextlib.suppress(OSError):
            self.ua.send_raw(cancel.encode())

    async def bye(self, timeout: float) -> SipMessage:
        """Hang up; the final response to the BYE (TimeoutError if none)."""
        req = self.ua.new_request(
            "BYE",
            self.remote_target,
            call_id=self.call_id,
            cseq=self.ua.next_cseq(),
            from_tag=self.local_tag,
            to=self.remote_to,
            extra=self.media_headers(),
        )
        tx = self.ua.start_transaction(req)
        try:
            answer = await self.ua.final_response(tx, timeout)
            self.note_peer(answer)
            return answer
        finally:
            self.ua._tx.pop(tx.key, None)
            tx.stop()

    def on_bye(self) -> None:
        self.bye_event.set()

    def stop_timers(self) -> None:
        if self.tx is not None:
            self.tx.stop()


class IncomingCall(_MediaCount):
    """The callee's side of one INVITE: ring, answer or reject, then wait for the BYE."""

    def __init__(self, ua: UserAgent, inb: Inbound) -> None:
        self.ua = ua
        self.invite = inb.message
        self.call_id = self.invite.call_id
        self._reply = inb.reply
        self.local_tag = new_tag()
        self.offer: sdp.AudioOffer | None = None
        with contextlib.suppress(ValueError):
            self.offer = sdp.parse_audio(self.invite.body)
        self.received_at = time.monotonic()
        self.final_status: int | None = None
        self._last: bytes | None = None
        self._retx: asyncio.Task[None] | None = None
        self.acked = asyncio.Event()
        self.ended = asyncio.Event()  # BYE received (or CANCEL before the answer)
        self.cancelled = False

    def _respond(
        self, status: int, headers: list[tuple[str, str]] | None = None, body: bytes = b""
    ) -> None:
        msg = response(self.invite, status, to_tag=self.local_tag, headers=headers, body=body)
        self._last = msg.encode()
        log.info("-> %s (INVITE)", msg.summary())
        with contextlib.suppress(OSError):
            self._reply(self._last)

    def ring(self) -> None:
        self._respond(180, [("Contact", self.ua.contact)])

    def answer(self, body: bytes) -> None:
        self.final_status = 200
        self._respond(
            200,
            [
                ("Contact", self.ua.contact),
                ("Allow", ALLOW),
                ("User-Agent", USER_AGENT),
                ("Content-Type", "application/sdp"),
            ],
            body,
        )
        self._start_retransmit()

    def reject(self, status: int) -> None:
        self.final_status = status
        self._respond(status)
        self._start_retransmit()

    def _start_retransmit(self) -> None:
        """Final responses are retransmitted on UDP until the ACK (RFC 3261 13.3.1.4 and
        Timer G): T1, doubling to T2, for at most 64*T1."""
        if not self.ua.transport.reliable:
            self._retx = asyncio.get_running_loop().create_task(self._retransmit())

    async def _retransmit(self) -> None:
        interval, waited = T1, 0.0
        while not self.acked.is_set() and waited < 64 * T1:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.acked.wait(), interval)
                return
            waited += interval
            interval = min(interval * 2, T2)
            if self._last is not None:
                with contextlib.suppress(OSError):
                    self._reply(self._last)

    def on_retransmission(self, inb: Inbound) -> None:
        """The INVITE again (our response was lost): repeat the last response."""
        if self._last is not None:
            with contextlib.suppress(OSError):
                inb.reply(self._last)

    def on_ack(self) -> None:
        self.acked.set()

    def on_bye(self) -> None:
        self.ended.set()

    def on_cancel(self) -> None:
        if self.final_status is None:
            self.cancelled = True
            self.reject(487)
            self.ended.set()

    def stop_timers(self) -> None:
        if self._retx is not None:
            self._retx.cancel()
