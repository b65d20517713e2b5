"""Receive statistics of one RTP stream: RFC 3550 A.1 (sequence, loss) and A.8 (jitter),
plus loss bursts, a two-state Markov fit (ITU-T G.107 BurstR) and one-way delay.

Differences from A.1, chosen for a measuring receiver rather than a player:
- no probation: the first packet starts the stream (as Wireshark does), so a short call
  is not cut by the two packets A.1 would hold back;
- duplicates are detected (A.1 counts them as received, which can make `lost` negative)
  and are counted apart: they change neither received, loss nor jitter.
Wireshark's RTP analysis (ui/tap-rtp-analysis.c) computes the same jitter (in ms, J += (|D|
- J)/16) and the same loss (expected - received over first..last sequence number), so
`tshark -z rtp,streams` is an independent check; it also reports the mean and maximum of
the per-packet jitter, which `jitter_mean_ms` / `jitter_max_ms` reproduce.
"""

from __future__ import annotations

from itertools import pairwise

from harness.scoring.stats import percentile

SEQ_MOD = 1 << 16
TS_MOD = 1 << 32
MAX_DROPOUT = 3000  # RFC 3550 A.1: a forward jump larger than this is a restart
MAX_MISORDER = 100  # ... a backward jump up to this is a late packet


def _signed_ts_delta(ts: int, prev: int) -> int:
    """ts - prev modulo 2^32, as a signed number (timestamps wrap)."""
    return (ts - prev + (TS_MOD >> 1)) % TS_MOD - (TS_MOD >> 1)


class ReceiverStats:
    """Feed every received packet to `add`; `summary()` gives DirectionStats' fields."""

    def __init__(self, clock_rate: int = 8000) -> None:
        self.clock_rate = clock_rate
        self.started = False
        self.base_seq = 0
        self.max_seq = 0
        self.cycles = 0  # count of sequence wraps, times 2^16 (as in A.1)
        self.bad_seq = SEQ_MOD + 1
        self.received = 0
        self.duplicates = 0
        self.discarded = 0  # packets of a suspected restart that did not follow through
        self.jitter = 0.0  # in timestamp units
        self._jitter_sum = 0.0
        self._jitter_n = 0
        self.jitter_max = 0.0
        self._prev: tuple[int, int] | None = None  # (arrival ns, RTP timestamp)
        self._seen: set[int] = set()
        self._owd_ms: list[float] = []

    def _init_seq(self, seq: int) -> None:
        self.base_seq = self.max_seq = seq
        self.bad_seq = SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._seen.clear()

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    def _extended(self, seq: int) -> int:
        """Extended number of any packet near the highest one (before or after a wrap)."""
        delta = (seq - self.max_seq) % SEQ_MOD
        if delta < SEQ_MOD >> 1:
            return self.extended_max + delta
        return self.extended_max - (SEQ_MOD - delta)

    def _update_seq(self, seq: int) -> bool:
        """RFC 3550 A.1 update_seq without probation; False: discard the packet."""
        udelta = (seq - self.max_seq) % SEQ_MOD
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += SEQ_MOD
            self.max_seq = seq
        elif udelta <= SEQ_MOD - MAX_MISORDER:
            if seq == self.bad_seq:
                self._init_seq(seq)  # two in a row after a big jump: the source restarted
            else:
                self.bad_seq = (seq + 1) % SEQ_MOD
                return False
        return True  # in order, or late/duplicate within MAX_MISORDER

    def add(self, seq: int, timestamp: int, arrival_ns: int, sent_ns: int | None = None) -> None:
        """One packet: sequence number, RTP timestamp, arrival and (if carried) send time,
        both from time.monotonic_ns() of hosts sharing one clock."""
        if not self.started:
            self.started = True
            self._init_seq(seq)
        else:
            ext = self._extended(seq)
            if ext in self._seen:
                self.duplicates += 1
                return
            if not self._update_seq(seq):
                self.discarded += 1
                return
        self._seen.add(self._extended(seq))
        self.received += 1
        self._update_jitter(timestamp, arrival_ns)
        if sent_ns is not None and 0 < sent_ns <= arrival_ns:
            self._owd_ms.append((arrival_ns - sent_ns) / 1e6)

    def _update_jitter(self, timestamp: int, arrival_ns: int) -> None:
        """RFC 3550 A.8 in arrival order: D = (R_i - R_j) - (S_i - S_j), J += (|D| - J)/16.
        Differences are taken before scaling (exact nanoseconds), and the timestamp delta
        modulo 2^32 so that a timestamp wrap is not a jump."""
        if self._prev is not None:
            prev_ns, prev_ts = self._prev
            d = (arrival_ns - prev_ns) * self.clock_rate / 1e9
            d -= _signed_ts_delta(timestamp, prev_ts)
            self.jitter += (abs(d) - self.jitter) / 16.0
            self._jitter_sum += self.jitter
            self._jitter_n += 1
            self.jitter_max = max(self.jitter_max, self.jitter)
        self._prev = (arrival_ns, timestamp)

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1 if self.started else 0

    @property
    def lost(self) -> int:
        return max(self.expected - self.received, 0)

    def _ms(self, ts_units: float) -> float:
        return ts_units * 1000.0 / self.clock_rate

    @property
    def jitter_ms(self) -> float:
        return self._ms(self.jitter)

    @property
    def jitter_mean_ms(self) -> float:
        """Mean of the running jitter after each packet but the first (Wireshark's Mean
        Jitter)."""
        return self._ms(self._jitter_sum / self._jitter_n) if self._jitter_n else 0.0

    @property
    def jitter_max_ms(self) -> float:
        return self._ms(self.jitter_max)

    def _pattern(self) -> list[bool]:
        """Received (True) or missing, for each sequence number first..last."""
        return [ext in self._seen for ext in range(self.base_seq, self.extended_max + 1)]

    def loss_runs(self) -> list[int]:
        """Lengths of the runs of consecutive missing sequence numbers, first..last."""
        return loss_runs(self._pattern())

    def markov(self) -> tuple[float, float]:
        return gilbert_fit(self._pattern())

    def burst_r(self) -> float:
        return burst_ratio(*self.markov())

    def summary(self) -> dict[str, float | int | None]:
        """Exactly DirectionStats' keys; `sent` stays 0 (the sender's count is merged by
        whoever holds both agents' reports)."""
        runs = self.loss_runs()
        expected = self.expected
        mean = sum(self._owd_ms) / len(self._owd_ms) if self._owd_ms else None
        p95 = percentile(self._owd_ms, 95)
        return {
            "sent": 0,
            "received": self.received,
            "expected": expected,
            "lost": self.lost,
            "loss_pct": round(100.0 * self.lost / expected, 3) if expected else 0.0,
            "mean_burst_len": round(sum(runs) / len(runs), 3) if runs else 0.0,
            "burst_r": round(self.burst_r(), 4),
            "jitter_ms": round(self.jitter_ms, 4),
            "owd_ms_mean": None if mean is None else round(mean, 3),
            "owd_ms_p95": None if p95 is None else round(p95, 3),
            "duplicates": self.duplicates,
        }


def loss_runs(received: list[bool]) -> list[int]:
    """Lengths of the runs of consecutive missing packets in a received/missing pattern."""
    runs, run = [], 0
    for got in received:
        if got:
            if run:
                runs.append(run)
            run = 0
        else:
            run += 1
    return runs


def gilbert_fit(received: list[bool]) -> tuple[float, float]:
    """(p, q) of a two-state Gilbert model: p = P(lost | previous received), q =
    P(received | previous lost), counted over consecutive packets."""
    r_to_l = r_total = l_to_r = l_total = 0
    for prev, got in pairwise(received):
        if prev:
            r_total += 1
            r_to_l += not got
        else:
            l_total += 1
            l_to_r += got
    p = r_to_l / r_total if r_total else 0.0
    q = l_to_r / l_total if l_total else 1.0
    return p, q


def burst_ratio(p: float, q: float) -> float:
    """ITU-T G.107 BurstR = 1/(p+q); 1.0 (random loss) when nothing was lost."""
    if p == 0.0 or p + q <= 0.0:
        return 1.0
    return 1.0 / (p + q)
