"""Meek's session logic without I/O (Psiphon: psiphon/meekConn.go client, psiphon/server/
meek.go server), so that polling and retry behaviour can be tested on their own.

- Upstream bytes travel in POST bodies (at most MAX_PAYLOAD each), downstream bytes in the
  response bodies; one request is in flight per session at a time, so order is the order of
  requests.
- A session is named by a cookie with a random one-letter name (as Psiphon's client picks
  it). Psiphon's cookie value is an obfuscated, NaCl-encrypted JSON carrying the client's
  session id and tunnel protocol; ours is just a random session id (base64url of 16 bytes).
- Polling: after a round trip that moved data either way, poll again at once; otherwise back
  off geometrically with jitter up to a maximum (meekConn.go relay()). Psiphon's defaults are
  100 ms min (jitter 0.3), x1.5 applied with probability 0.5 (jitter 0.1), 5 s max (jitter
  0.1); ours start at 1 ms and stop at 250 ms, so a test's idle tunnel answers quickly.
- Retries: a failed round trip is retried with the same body for up to 5 s (50 ms delay,
  doubling, at most 1 s; as meekConn.go relayRoundTrip). Psiphon marks a retry with a Range
  header and the server skips a payload it already relayed; ours numbers each request
  (SEQ_HEADER), which gives the same: each body is relayed exactly once, and the response to
  a repeated request is sent again from the server's cache instead of being lost.
"""

from __future__ import annotations

import base64
import random
import re
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_PAYLOAD = 65536  # MEEK_MAX_REQUEST_PAYLOAD_LENGTH, also our cap on a response body
SEQ_HEADER = "X-Meek-Seq"
SESSION_ID_BYTES = 16
_SESSION_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

RETRY_DEADLINE = 5.0  # MEEK_ROUND_TRIP_RETRY_DEADLINE
RETRY_MIN_DELAY = 0.05
RETRY_MAX_DELAY = 1.0
RETRY_MULTIPLIER = 2.0
ROUND_TRIP_TIMEOUT = 20.0  # MEEK_ROUND_TRIP_TIMEOUT
MAX_SESSION_STALENESS = 45.0  # server: MEEK_MAX_SESSION_STALENESS


class MeekError(Exception):
    """A request the session cannot accept; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def jitter(value: float, factor: float, rng: random.Random) -> float:
    """value +/- up to factor*value, uniformly (prng.JitterDuration)."""
    return value + rng.uniform(-factor, factor) * value


@dataclass(frozen=True)
class PollTiming:
    """The client's polling parameters, in seconds (Psiphon's names: MeekMinPollInterval...)."""

    min_interval: float = 0.001
    min_jitter: float = 0.3
    multiplier: float = 1.5
    multiplier_probability: float = 0.5
    jitter: float = 0.1
    max_interval: float = 0.25
    max_jitter: float = 0.1


class PollSchedule:
    """How long the client waits for upstream bytes before sending an empty poll."""

    def __init__(self, timing: PollTiming | None = None, rng: random.Random | None = None):
        self.timing = timing or PollTiming()
        self.rng = rng or random.Random()
        self.interval = jitter(self.timing.min_interval, self.timing.min_jitter, self.rng)

    def after(self, exchanged: bool) -> float:
        """The next interval, given whether the last round trip moved any payload."""
        t = self.timing
        if exchanged:
            self.interval = 0.0
        elif self.interval == 0.0:
            self.interval = jitter(t.min_interval, t.min_jitter, self.rng)
        else:
            if self.rng.random() < t.multiplier_probability:
                self.interval *= t.multiplier
            self.interval = jitter(self.interval, t.jitter, self.rng)
            if self.interval >= t.max_interval:
                self.interval = jitter(t.max_interval, t.max_jitter, self.rng)
        return self.interval


def retry_delays(
    deadline: float = RETRY_DEADLINE,
    first: float = RETRY_MIN_DELAY,
    most: float = RETRY_MAX_DELAY,
    multiplier: float = RETRY_MULTIPLIER,
) -> list[float]:
    """Delays before each retry of a failed round trip: at least one retry, then more while
    the total stays within `deadline`."""
    delays, delay, total = [], first, 0.0
    while not delays or total + delay <= deadline:
        delays.append(delay)
        total += delay
        delay = min(delay * multiplier, most)
    return delays


def new_cookie(rng: Callable[[int], bytes] = secrets.token_bytes) -> tuple[str, str]:
    """(name, value): a random capital letter and a fresh session id."""
    name = string.ascii_uppercase[rng(1)[0] % 26]
    return name, base64.urlsafe_b64encode(rng(SESSION_ID_BYTES)).decode().rstrip("=")


def session_id_from(cookie_header: str | None) -> str:
    """The session id in a request's Cookie header (its first cookie, whatever its name)."""
    if not cookie_header:
        raise MeekError(404, "no session cookie")
    first = cookie_header.split(";")[0].strip()
    _, sep, value = first.partition("=")
    if not sep or not _SESSION_ID.match(value):
        raise MeekError(404, "malformed session cookie")
    return value


@dataclass
class Relay:
    """A new request: its body goes upstream, then a fresh response is collected."""

    seq: int


@dataclass
class Resend:
    """A repeated request: its body was relayed already; answer with the cached response."""

    body: bytes


@dataclass
class SessionState:
    """The server's view of one session's request sequence."""

    clock: Callable[[], float] = time.monotonic
    next_seq: int = 0
    last_seq: int | None = None
    last_response: bytes | None = None
    last_seen: float = field(default=0.0)

    def __post_init__(self) -> None:
        self.last_seen = self.clock()

    def request(self, seq: int) -> Relay | Resend:
        """Classify request `seq`; raises MeekError for one that cannot belong here."""
        self.last_seen = self.clock()
        if seq == self.next_seq:
            self.next_seq += 1
            self.last_seq, self.last_response = seq, None
            return Relay(seq)
        if seq == self.last_seq and self.last_response is not None:
            return Resend(self.last_response)
        raise MeekError(409, f"request {seq} out of order (expected {self.next_seq})")

    def responded(self, seq: int, body: bytes) -> None:
        """Cache the response to `seq` before it is written, so a retry can have it."""
        if seq == self.last_seq:
            self.last_response = body

    def stale(self, limit: float = MAX_SESSION_STALENESS) -> bool:
        return self.clock() - self.last_seen > limit


def parse_seq(value: str | None) -> int:
    if value is None or not value.isdigit() or len(value) > 18:
        raise MeekError(400, f"missing or invalid {SEQ_HEADER}")
    return int(value)
