"""Client transactions (RFC 3261 17.1): retransmission on UDP, response delivery, and the
ACK a non-2xx final to an INVITE needs (which belongs to the transaction, not the UA)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from harness.apps.sip.message import SipMessage

T1 = 0.5  # RTT estimate (s); retransmissions start here and double
T2 = 4.0  # cap of non-INVITE retransmission interval
TIMER_B = 64 * T1  # give up on a transaction that got no answer at all


class ClientTransaction:
    """One request and its responses. Responses are queued in arrival order; a transport
    failure is queued as an exception so that whoever waits learns about it."""

    def __init__(self, request: SipMessage, send: Callable[[bytes], None], reliable: bool) -> None:
        self.request = request
        self.method = request.method or ""
        self.branch = request.top_via().branch
        self.key = (self.branch, self.method)
        self.raw = request.encode()
        self._send = send
        self._reliable = reliable
        self._queue: asyncio.Queue[SipMessage | BaseException] = asyncio.Queue()
        self.provisional = False
        self.final: SipMessage | None = None
        self.sent_at = 0.0
        self._timer: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sent_at = time.monotonic()
        self._send(self.raw)
        if not self._reliable:
            self._timer = asyncio.get_running_loop().create_task(self._retransmit())

    async def _retransmit(self) -> None:
        """Timer A (INVITE: doubles, stops at the first provisional) or Timer E (others:
        doubles up to T2, then every T2 even after a provisional)."""
        interval = T1
        while self.final is None:
            await asyncio.sleep(interval)
            if self.final is not None or (self.method == "INVITE" and self.provisional):
                return
            with contextlib.suppress(OSError):
                self._send(self.raw)
            if self.method == "INVITE":
                interval *= 2
            else:
                interval = T2 if self.provisional else min(interval * 2, T2)

    def on_response(self, resp: SipMessage) -> bool:
        """Take a response; False for a retransmission of the final (nothing new)."""
        status = resp.status or 0
        if self.final is not None:
            if self.method == "INVITE" and status >= 300:
                self._ack_non_2xx(resp)  # our ACK was lost: the peer retransmits its final
            return False
        if status < 200:
            self.provisional = True
        else:
            self.final = resp
            self.stop()
            if self.method == "INVITE" and status >= 300:
                self._ack_non_2xx(resp)
        self._queue.put_nowait(resp)
        return True

    def on_error(self, exc: BaseException) -> None:
        if self.final is None:
            self.stop()
            self._queue.put_nowait(exc)

    async def next_response(self) -> SipMessage:
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def _ack_non_2xx(self, resp: SipMessage) -> None:
        """RFC 3261 17.1.1.3: same branch and R-URI as the INVITE, To from the response."""
        ack = SipMessage(method="ACK", uri=self.request.uri)
        ack.add("Via", self.request.get_all("via")[0])
        for name in ("Max-Forwards", "From", "Call-ID"):
            value = self.request.get(name)
            if value is not None:
                ack.add(name, value)
        ack.add("To", resp.get("to") or "")
        ack.add("CSeq", f"{self.request.cseq[0]} ACK")
        with contextlib.suppress(OSError):
            self._send(ack.encode())

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
