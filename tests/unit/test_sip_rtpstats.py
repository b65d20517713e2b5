"""RFC 3550 receive statistics: sequence wrap, reordering, duplicates, loss bursts, the
Markov fit, jitter on a hand-computed arrival pattern, one-way delay."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.media.rtpstats import ReceiverStats
from harness.results import DirectionStats
from harness.scoring.stats import percentile

MS = 1_000_000  # ns
FRAME = 160  # timestamp units per 20 ms packet


def feed(seqs: list[int], first_seq: int = 1000, first_ts: int = 5000) -> ReceiverStats:
    """Packets by index into the stream (seq = first_seq + i), arriving on time."""
    stats = ReceiverStats()
    for i in seqs:
        stats.add((first_seq + i) % 65536, first_ts + i * FRAME, 10**12 + i * 20 * MS)
    return stats


def test_summary_has_exactly_direction_stats_keys() -> None:
    summary = feed(list(range(10))).summary()
    assert set(summary) == set(DirectionStats.model_fields)
    DirectionStats(**summary)  # and the values validate
    assert summary["sent"] == 0


def test_clean_stream() -> None:
    s = feed(list(range(50))).summary()
    assert (s["received"], s["expected"], s["lost"], s["loss_pct"]) == (50, 50, 0, 0.0)
    assert s["jitter_ms"] == 0.0 and s["burst_r"] == 1.0 and s["mean_burst_len"] == 0.0


def test_sequence_wrap_at_65535() -> None:
    stats = feed(list(range(20)), first_seq=65530)
    assert stats.cycles == 65536 and stats.max_seq == 65530 + 19 - 65536
    assert (stats.expected, stats.received, stats.lost) == (20, 20, 0)


def test_loss_across_the_wrap_is_one_burst() -> None:
    # seq 65535 and 0 are lost: indices 5 and 6 from 65530
    stats = feed([i for i in range(12) if i not in (5, 6)], first_seq=65530)
    assert (stats.expected, stats.lost) == (12, 2)
    assert stats.loss_runs() == [2]


def test_reordering_is_not_loss() -> None:
    stats = feed([0, 1, 3, 2, 4, 6, 5, 7])
    s = stats.summary()
    assert (s["received"], s["lost"], s["duplicates"]) == (8, 0, 0)
    assert stats.loss_runs() == []


def test_late_packet_across_the_wrap_is_found() -> None:
    # 65535 arrives after 0 and 1: it belongs before the wrap, not 65536 later.
    stats = feed([0, 1, 2, 3, 5, 6, 4, 7], first_seq=65531)
    assert stats.cycles == 65536 and (stats.expected, stats.lost) == (8, 0)


def test_duplicates_are_counted_apart() -> None:
    stats = feed([0, 1, 1, 2, 3, 3, 3, 4])
    s = stats.summary()
    assert (s["received"], s["expected"], s["lost"], s["duplicates"]) == (5, 5, 0, 3)


def test_burst_lengths_and_markov_fit() -> None:
    # 20 packets; lost: 3 | 7 8 9 | 15 16  -> runs 1, 3, 2
    lost = {3, 7, 8, 9, 15, 16}
    stats = feed([i for i in range(20) if i not in lost])
    assert stats.loss_runs() == [1, 3, 2]
    s = stats.summary()
    assert (s["lost"], s["mean_burst_len"], s["loss_pct"]) == (6, 2.0, 30.0)
    # Transitions over 0..19: from received (14 states with a successor, all 14 received
    # but the last is 19 which has none: 13) -> 3 go to lost; from lost (6) -> 3 recover.
    p, q = stats.markov()
    assert p == pytest.approx(3 / 13) and q == pytest.approx(3 / 6)
    assert s["burst_r"] == pytest.approx(1 / (3 / 13 + 0.5), abs=1e-4)


def test_isolated_losses_give_burst_r_near_one() -> None:
    # Single losses that always recover at once: q = 1, so BurstR = 1/(1+p) <= 1.
    # 90 received, 89 of them with a successor, 10 of those followed by a loss.
    stats = feed([i for i in range(100) if i % 10 != 5])
    p, q = stats.markov()
    assert q == 1.0 and p == pytest.approx(10 / 89)
    assert stats.burst_r() == pytest.approx(1 / (1 + 10 / 89))


def test_jitter_on_a_hand_computed_arrival_pattern() -> None:
    # Sent every 20 ms (160 units); arrivals at 0, 20, 45, 60, 80 ms.
    # D = 0, 5, 5, 0 ms = 0, 40, 40, 0 units; J: 0, 2.5, 4.84375, 4.541015625 units.
    stats = ReceiverStats()
    for i, arrival_ms in enumerate((0, 20, 45, 60, 80)):
        stats.add(100 + i, 7000 + i * FRAME, 10**12 + arrival_ms * MS)
    assert stats.jitter == pytest.approx(4.541015625)
    assert stats.jitter_ms == pytest.approx(4.541015625 / 8)
    assert stats.summary()["jitter_ms"] == pytest.approx(0.5676, abs=1e-4)
    # Wireshark's Mean/Max Jitter: over the running value after packets 2..5.
    assert stats.jitter_mean_ms == pytest.approx((0 + 2.5 + 4.84375 + 4.541015625) / 4 / 8)
    assert stats.jitter_max_ms == pytest.approx(4.84375 / 8)


def test_jitter_ignores_rtp_timestamp_wrap() -> None:
    stats = ReceiverStats()
    for i in range(10):
        stats.add(i, (2**32 - 3 * FRAME + i * FRAME) % 2**32, 10**12 + i * 20 * MS)
    assert stats.jitter == pytest.approx(0.0)


def test_one_way_delay_mean_and_p95() -> None:
    stats = ReceiverStats()
    for i in range(20):
        sent = 10**12 + i * 20 * MS
        stats.add(i, i * FRAME, sent + (i + 1) * MS, sent_ns=sent)  # 1..20 ms
    s = stats.summary()
    assert s["owd_ms_mean"] == pytest.approx(10.5)
    assert s["owd_ms_p95"] == pytest.approx(percentile([float(d) for d in range(1, 21)], 95))
    assert s["owd_ms_p95"] == pytest.approx(19.05)
    assert feed([0, 1]).summary()["owd_ms_mean"] is None  # no send stamps, no delay


def test_restart_after_a_big_jump_follows_rfc3550() -> None:
    stats = feed(list(range(5)))
    stats.add(40000, 0, 10**13)  # a jump: held as bad_seq, discarded
    assert stats.received == 5 and stats.discarded == 1
    stats.add(40001, 160, 10**13 + 20 * MS)  # the next in sequence: the source restarted
    assert stats.base_seq == 40001 and stats.received == 1 and stats.lost == 0


@given(
    first=st.integers(0, 65535),
    kept=st.lists(st.booleans(), min_size=2, max_size=400),
)
def test_loss_counts_match_the_pattern(first: int, kept: list[bool]) -> None:
    kept[0] = kept[-1] = True  # RFC 3550 counts between the first and the last received
    stats = feed([i for i, k in enumerate(kept) if k], first_seq=first)
    missing = kept.count(False)
    assert (stats.expected, stats.lost) == (len(kept), missing)
    assert sum(stats.loss_runs()) == missing
    p, q = stats.markov()
    assert 0.0 <= p <= 1.0 and 0.0 <= q <= 1.0
    assert stats.burst_r() > 0.0
