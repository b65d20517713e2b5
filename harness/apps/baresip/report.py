"""Reading what baresip prints when a call closes: the `rtcpsummary` line and the
`rtp_stats` table.

rtcpsummary (only after at least one RTCP report; else `EX=BareSip;ERROR=No RTCP stats
collected;`):
    EX=BareSip;CS=0;CD=6;PR=250;PS=250;PL=0,0;PD=0,0;JI=1.0,1.0;DL=0.0;IP=...;
CS call setup ms, CD duration s, PR/PS packets received/sent, PL lost rx,tx, PD discarded
rx,tx, JI jitter rx,tx ms, DL round trip ms. These are RTCP figures, as of the last RTCP
report (every 5 s): rx from baresip's own receiver, tx from the peer's receiver report.

The rtp_stats table: `packets` counts every RTP packet of the whole call (baresip's stream
metrics); pkt.report/lost/jitter repeat the RTCP figures and appear only with a report:
    audio           Transmit:     Receive:
    packets:            301          301
    avg. bitrate:      64.2         64.2  (kbit/s)
    errors:               0            0
    pkt.report:         250          250
    lost:                 0            0
    jitter:             1.0          1.0  (ms)
"""

from __future__ import annotations

import re
from typing import Any

_SUMMARY = re.compile(r"^EX=BareSip;(?P<body>.*)$", re.MULTILINE)
_TABLE_HEAD = re.compile(r"^audio\s+Transmit:\s+Receive:\s*$", re.MULTILINE)
_NUM = r"(-?\d+(?:\.\d+)?)"
_ROWS = {
    "packets": "packets",
    "avg. bitrate": "bitrate_kbit",
    "errors": "errors",
    "pkt.report": "reported",
    "lost": "lost",
    "jitter": "jitter_ms",
}


def _number(text: str) -> int | float:
    return float(text) if "." in text else int(text)


def parse_summary(text: str) -> dict[str, Any] | None:
    """The last rtcpsummary line of `text` as a dict; {"error": ...} when baresip said it
    had no RTCP stats; None when there is no line at all."""
    matches = list(_SUMMARY.finditer(text))
    if not matches:
        return None
    fields = dict(part.split("=", 1) for part in matches[-1]["body"].split(";") if "=" in part)
    if "ERROR" in fields:
        return {"error": fields["ERROR"]}
    out: dict[str, Any] = {}
    pairs = {"PL": "lost", "PD": "discarded", "JI": "jitter_ms"}
    scalars = {"CS": "setup_ms", "CD": "duration_s", "PR": "received", "PS": "sent",
               "DL": "rtt_ms"}  # fmt: skip
    for key, name in scalars.items():
        if key in fields:
            out[name] = _number(fields[key])
    for key, name in pairs.items():
        if key in fields:
            rx, tx = fields[key].split(",", 1)
            out[f"{name}_rx"], out[f"{name}_tx"] = _number(rx), _number(tx)
    return out


def parse_table(text: str) -> dict[str, dict[str, int | float]] | None:
    """The last rtp_stats table of `text`: {"tx": {...}, "rx": {...}} with the keys
    packets, bitrate_kbit, errors and (with an RTCP report) reported, lost, jitter_ms."""
    heads = list(_TABLE_HEAD.finditer(text))
    if not heads:
        return None
    table: dict[str, dict[str, int | float]] = {"tx": {}, "rx": {}}
    for line in text[heads[-1].end() :].splitlines()[1:]:
        label, colon, values = line.partition(":")
        if not colon or label.strip() not in _ROWS:
            break
        numbers = re.findall(_NUM, values)
        if len(numbers) < 2:
            break
        key = _ROWS[label.strip()]
        table["tx"][key], table["rx"][key] = _number(numbers[0]), _number(numbers[1])
    return table
