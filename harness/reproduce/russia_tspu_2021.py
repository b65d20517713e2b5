"""Russia's TSPU throttling Twitter in March 2021, reproduced on the `russia-tspu-2021`
profile with real TLS transfers (Python ssl on both ends) through the real censor.

Xue, Ramesh, ValdikSS, Evdokimov, Viktorov, Jain, Wustrow, Basso, Ensafi: "Throttling
Twitter: An Emerging Censorship Technique in Russia", IMC 2021 (and Censored Planet's
report censoredplanet.org/throttling). Published behaviour checked here:
  - flows whose TLS SNI names Twitter are throttled to about 130-150 kbit/s, in both
    directions (early reports said 128 kbit/s); other flows are not throttled;
  - on 10-11 March 2021 the rule matched the substring `t.co` (`*t.co*`), so unrelated
    names such as reddit.com and microsoft.com were throttled too (fixed on 11 March);
  - a ClientHello split over TCP segments, or preceded by a packet of random bytes, is not
    throttled: the throttler reads only the first packet as the start of a ClientHello.

The shipped profile lists twitter.com, twimg.com and t.co as suffixes (the state after the
fix) and, as its second technique of the same parameters, the March 10 rule: the regex
`t\\.co` anywhere in the name. The case runs both, as the profile ships them.

Goodput is measured (TLS payload bytes over time from the request to the last byte), which
sits a few per cent under the rate the censor shapes on the wire (TCP/IP and TLS headers):
hence the rate tolerance 0.93 x 130 .. 150 kbit/s.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from harness.reproduce.core import CaseReport, Measured, Published, Row
from harness.reproduce.lab import Lab, profile_technique

NAME = "russia-tspu-2021"
TITLE = "Russia's TSPU throttling Twitter (Xue et al., IMC 2021)"
PAPER = "Xue et al., IMC 2021"
LOW, HIGH = 130e3, 150e3  # bit/s, published range
FLOOR = 0.93 * LOW  # goodput under the wire rate
FREE = 10 * HIGH  # "unthrottled": at least ten times the throttled ceiling
RATE_TOLERANCE = (
    f"every flow within {FLOOR / 1e3:.0f}-{HIGH / 1e3:.0f} kbit/s: the published range, its "
    "floor lowered 7 % because goodput excludes TCP/IP and TLS headers"
)


def _kbit(results: list[dict]) -> tuple[str, str]:
    speeds = [r.get("bps", 0.0) for r in results]
    errors = [r["error"] for r in results if "error" in r]
    unit, scale = ("Mbit/s", 1e6) if min(speeds) > 1e6 else ("kbit/s", 1e3)
    value = f"median {statistics.median(speeds) / scale:.1f} {unit}"
    spread = f"min {min(speeds) / scale:.1f}, max {max(speeds) / scale:.1f} {unit}"
    if errors:
        spread += f"; errors: {errors}"
    return value, spread


def _rate_row(quantity: str, published: Published, results: list[dict], low: float,
              high: float, tolerance: str) -> Row:  # fmt: skip
    value, spread = _kbit(results)
    ok = all("error" not in r and low <= r["bps"] <= high for r in results)
    return Row(quantity, published, Measured(value, spread, len(results)), ok, tolerance)


def run(quick: bool, workdir: Path) -> CaseReport:
    size = 30_000 if quick else 120_000  # throttled transfer: ~1.7 s / ~7 s at 140 kbit/s
    big = 2_000_000
    twitter = ["twitter.com", "abs.twimg.com"] if quick else [
        "twitter.com", "abs.twimg.com", "t.co", "api.twitter.com", "pbs.twimg.com"]  # fmt: skip
    repeats = 1 if quick else 3
    profile = profile_technique("russia-tspu-2021", "tspu-twitter")
    march = profile_technique("russia-tspu-2021", "tspu-march-2021-tco")
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"profile": "russia-tspu-2021", "rate": profile.rate,  # type: ignore[attr-defined]
                         "march_2021_rule": "regex t\\.co (the profile's second technique)",
                         "throttled_bytes": size})  # fmt: skip
    with Lab(workdir) as lab:
        names = [*twitter, "reddit.com", "www.microsoft.com", "example.test"]
        lab.tls_server("front", names)
        lab.censor(profile, march)
        down = lab.tls_many([{"sni": s, "size": size} for s in twitter])
        up = lab.tls_many([{"sni": s, "size": size, "upload": True} for s in twitter[:repeats]])
        over = lab.tls_many([{"sni": s, "size": size} for s in ["reddit.com", "www.microsoft.com"]])
        free = [lab.tls("example.test", size=big) for _ in range(repeats)]
        split = [lab.tls("twitter.com", "split", big // 4) for _ in range(repeats)]
        prepend = [lab.tls("twitter.com", "prepend", big // 4) for _ in range(repeats)]
        throttled = [e["rule"] for e in lab.events("throttle")]
    published_rate = Published("130-150 kbit/s (early reports: 128 kbit/s)", PAPER,
                               "throttling rate")  # fmt: skip
    report.rows.append(_rate_row("download rate, Twitter SNIs (" + ", ".join(twitter) + ")",
                                 published_rate, down, FLOOR, HIGH, RATE_TOLERANCE))  # fmt: skip
    report.rows.append(_rate_row("upload rate, Twitter SNIs", Published(
        "throttled too: both directions", PAPER, "throttling rate, upstream"), up, FLOOR, HIGH,
        RATE_TOLERANCE))  # fmt: skip
    over_row = _rate_row("reddit.com, www.microsoft.com (March 10 rule *t.co*)", Published(
        "throttled (collateral of the t.co substring)", PAPER, "timeline, 10-11 March 2021"),
        over, FLOOR, HIGH, RATE_TOLERANCE)  # fmt: skip
    over_row.note = "measured with the profile's March 10 rule (regex t\\.co)"
    report.rows.append(over_row)
    unthrottled = f"above {FREE / 1e6:.1f} Mbit/s (ten times the throttled ceiling)"
    report.rows.append(
        _rate_row(
            "other SNIs (example.test)",
            Published("not throttled", PAPER, "trigger: SNI"),
            free,
            FREE,
            float("inf"),
            unthrottled,
        )
    )
    report.rows.append(_rate_row("ClientHello split over 2 TCP segments (twitter.com)",
                                 Published("not throttled: evades", PAPER, "circumvention"),
                                 split, FREE, float("inf"), unthrottled))  # fmt: skip
    report.rows.append(_rate_row("random 203-byte packet before the ClientHello (twitter.com)",
                                 Published("not throttled: evades", PAPER, "circumvention"),
                                 prepend, FREE, float("inf"), unthrottled))  # fmt: skip
    report.configured["throttle_events"] = len(throttled)
    return report
