"""Small statistics for per-cell scores, without numpy.

A cell has a handful of trials, so a success ratio is reported with a Wilson score
interval (it stays inside [0, 1] and is honest at 0/n and n/n, unlike the normal
approximation), and percentiles interpolate like numpy's default so figures match what
a reader gets from numpy.percentile on results.jsonl.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

Z_95 = 1.959964  # two-sided 95% normal quantile


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of successes/n; (0, 1) when there is no trial to go on."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")
    if n == 0:
        return 0.0, 1.0
    return wilson_interval_of_ratio(successes / n, n, z)


def wilson_interval_of_ratio(ratio: float, n: float, z: float = Z_95) -> tuple[float, float]:
    """The Wilson interval of a ratio seen over n trials (n need not be whole): what the
    interval would be after more trials with the same result."""
    if n <= 0 or not 0.0 <= ratio <= 1.0:
        raise ValueError(f"need n > 0 and 0 <= ratio <= 1, got {ratio} over {n}")
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (ratio + z2 / (2 * n)) / denom
    half = z * math.sqrt(ratio * (1.0 - ratio) / n + z2 / (4 * n * n)) / denom
    # Exact ends at 0/n and n/n (floating point would leave 1e-17 there).
    lower = 0.0 if ratio == 0.0 else max(0.0, centre - half)
    upper = 1.0 if ratio == 1.0 else min(1.0, centre + half)
    return lower, upper


def percentile(values: Iterable[float], p: float) -> float | None:
    """The p-th percentile (0..100), linear between closest ranks as numpy's default.

    None for no values: a cell where nothing was measured has no percentile, not 0.
    """
    if not 0.0 <= p <= 100.0:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = (len(ordered) - 1) * p / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float]) -> float | None:
    """The 50th percentile; None for no values."""
    return percentile(values, 50.0)
