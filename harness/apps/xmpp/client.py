"""An slixmpp client that tells *why* a session failed, in the harness's outcome classes.

slixmpp retries a failed connection forever with back-off and reports most failures only as
log lines; a trial needs the first failure, classified (reset, refused, timeout, tls-alert),
and the time the session took to come up. Connections go straight to an address, or through
a SOCKS5 proxy (CONNECT) when a circumvention tool is in use; either way TLS is STARTTLS on
the same stream, verified against the run CA with the XMPP domain as the expected name.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any

import slixmpp

from harness.net import socks5
from harness.net.resolve import DnsFailure

log = logging.getLogger(__name__)

# SOCKS5 reply codes (RFC 1928) mapped to what a direct connection would have seen.
_SOCKS_OUTCOME = {5: "refused", 3: "timeout", 4: "timeout", 6: "timeout"}
_UNREACHABLE = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}


@dataclass(frozen=True)
class Failure:
    outcome: str
    error: str


def classify(exc: BaseException | None, stage: str) -> Failure:
    """Map an exception (None: the peer closed the stream) to an outcome class."""
    where = f"during {stage}"
    if exc is None:
        # An orderly close (FIN) before the session is up: to the user the same as a reset.
        return Failure("reset", f"connection closed by peer {where}")
    text = f"{type(exc).__name__}: {exc} {where}".replace(":  ", ": ")
    if isinstance(exc, DnsFailure | socket.gaierror):
        return Failure("dns-failure", text)
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return Failure("tls-alert", text)
    if isinstance(exc, socks5.Socks5Error):
        return Failure(_SOCKS_OUTCOME.get(exc.code, "error"), f"SOCKS5: {text}")
    if isinstance(exc, ConnectionRefusedError):
        return Failure("refused", text)
    if isinstance(exc, ConnectionResetError | ConnectionAbortedError | BrokenPipeError):
        return Failure("reset", text)
    if isinstance(exc, asyncio.IncompleteReadError):
        return Failure("reset", text)
    if isinstance(exc, TimeoutError):
        return Failure("timeout", text)
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE:
        # ICMP unreachable / administratively prohibited: an active rejection.
        return Failure("refused", text)
    return Failure("error", text)


class AgentClient(slixmpp.ClientXMPP):
    """One XMPP account's session; `session` resolves with connect_ms or a Failure."""

    def __init__(
        self,
        jid: str,
        password: str,
        ssl_context: ssl.SSLContext,
        socks: socks5.ProxyAddress | None = None,
        socks_timeout: float = 10.0,
    ) -> None:
        super().__init__(jid, password)
        self.ssl_context = ssl_context
        self.enable_direct_tls = False  # port 5222 speaks STARTTLS; no XEP-0368 detour
        self.enable_plaintext = False
        self.socks = socks
        self.socks_timeout = socks_timeout
        self.stage = "init"
        self.connect_started: float | None = None
        self.failure: Failure | None = None
        self.session: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.lost: asyncio.Future[Failure] = asyncio.get_running_loop().create_future()
        self._socks_writer: asyncio.StreamWriter | None = None
        self.add_event_handler("connected", lambda _: self._set_stage("stream"))
        self.add_event_handler("auth_success", lambda _: self._set_stage("bind"))
        self.add_event_handler("session_start", self._on_session_start)
        self.add_event_handler("failed_all_auth", self._on_failed_auth)
        self.add_event_handler("stream_error", self._on_stream_error)
        self.add_event_handler("disconnected", self._on_disconnected)

    # -- connection ----------------------------------------------------------------------

    async def _attempt_connection(
        self, host: str, port: int, tls: bool, server_hostname: str | None
    ) -> bool:
        """slixmpp's hook for one TCP attempt, replaced to add SOCKS5 and keep the error."""
        self.event_when_connected = "connected"
        self.stage = "tcp-connect" if self.socks is None else "socks-connect"
        self.connect_started = time.monotonic()
        try:
            if self.socks is None:
                await self.loop.create_connection(lambda: self, host, port)
            else:
                _, writer = await socks5.open_connection(self.socks, host, port, self.socks_timeout)
                # The XMPP client speaks first, so nothing is buffered in the stream reader:
                # hand the raw transport to slixmpp. Keep the writer: its __del__ closes it.
                self._socks_writer = writer
                writer.transport.set_protocol(self)
                self.connection_made(writer.transport)
        except (OSError, EOFError, ValueError) as exc:
            self.fail(classify(exc, self.stage))
            return False
        return True

    async def start_tls(self) -> bool:
        """STARTTLS, as slixmpp does it, but keeping the reason when the handshake fails."""
        self._set_stage("tls")
        if self.transport is None:
            return False
        # slixmpp's connection_made() drops a TLS transport unless it is the current
        # connection attempt, so the handshake is registered as one (and stop() cancels it).
        self._current_connection_attempt = asyncio.ensure_future(
            self.loop.start_tls(
                self.transport, self, self.get_ssl_context(), server_hostname=self.default_domain
            )
        )
        try:
            transport = await self._current_connection_attempt
        except asyncio.CancelledError:
            return False
        except (OSError, EOFError) as exc:  # ssl.SSLError is an OSError
            self.fail(classify(exc, "tls"))
            self.abort()
            return False
        self.connection_made(transport, send_event=False)
        self._set_stage("auth")
        return True

    async def _handle_stream_features(self, features: Any) -> bool | None:
        """Refuse to authenticate in clear text when STARTTLS is missing (a downgrade)."""
        clear = self.transport is not None and self.transport.get_extra_info("ssl_object") is None
        if clear and "starttls" not in features["features"]:
            self.fail(Failure("tls-alert", "server offered no STARTTLS (downgrade?)"))
            self.abort()
            return True
        return await super()._handle_stream_features(features)

    # -- events --------------------------------------------------------------------------

    def _set_stage(self, stage: str) -> None:
        self.stage = stage

    def fail(self, failure: Failure) -> None:
        """Record the first failure before the session is up; later ones are consequences."""
        if self.failure is None and not self.session.done():
            self.failure = failure
            log.info("session failed: %s (%s)", failure.outcome, failure.error)
            self.session.set_exception(SessionFailed(failure))

    def _on_session_start(self, _: Any) -> None:
        self.stage = "session"
        started = self.connect_started or time.monotonic()
        if not self.session.done():
            self.session.set_result((time.monotonic() - started) * 1000)

    def _on_failed_auth(self, _: Any) -> None:
        self.fail(Failure("error", "authentication failed"))

    def _on_stream_error(self, error: Any) -> None:
        condition = error["condition"] if error is not None else "unknown"
        self.fail(Failure("error", f"stream error {condition} during {self.stage}"))

    def _on_disconnected(self, reason: Any) -> None:
        exc = reason if isinstance(reason, BaseException) else None
        failure = classify(exc, self.stage)
        if isinstance(reason, str) and reason:
            failure = Failure(failure.outcome, f"{failure.error} ({reason})")
        if not self.session.done():
            self.fail(failure)
        elif not self.lost.done():
            self.lost.set_result(failure)

    def stop(self) -> None:
        """Stop retrying and drop the connection at once (used at deadlines)."""
        self.cancel_connection_attempt()
        if self.transport is not None:
            self.abort()
        if self.session.done() and not self.session.cancelled():
            self.session.exception()  # retrieved: no "never retrieved" warning at exit


class SessionFailed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.error)
        self.failure = failure
