"""Fully encrypted traffic, as the GFW flagged it (Wu et al., USENIX Security 2023, Alg. 1).

Only the client's first TCP payload is examined. It is *exempt* (allowed) when any of:
  Ex1  average popcount per byte <= 3.4 or >= 4.6
  Ex2  the first six bytes are printable ASCII (0x20-0x7e)
  Ex3  more than 50% of the bytes are printable
  Ex4  a run of more than 20 contiguous printable bytes
  Ex5  it matches a protocol fingerprint: TLS `[\\x16\\x17]\\x03[\\x00-\\x09]` or HTTP
       `GET `, `PUT `, `POST `, `HEAD `
and `fet.yes` (it would be blocked) otherwise. The paper's TLS byte range is 0x00-0x09; the
artifact's `utils/detect.py` accepts up to 0x0f: `tls_third_byte_max` picks. The GFW then
blocked only a share of matching connections (a probability), which is the rule's business.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

PRINTABLE = bytes(range(0x20, 0x7F))
# Printable -> "a", anything else -> " ": then bytes.split() cuts the runs apart in C.
_RUNS = bytes(0x61 if 0x20 <= b <= 0x7E else 0x20 for b in range(256))
HTTP_PREFIXES = (b"GET ", b"PUT ", b"POST ", b"HEAD ")


def popcount_per_byte(data: bytes) -> float:
    """Average number of 1 bits per byte (random data: 4.0)."""
    return int.from_bytes(data, "big").bit_count() / len(data) if data else 0.0


def printable_count(data: bytes) -> int:
    return len(data) - len(data.translate(None, PRINTABLE))


def longest_printable_run(data: bytes) -> int:
    return max(map(len, data.translate(_RUNS).split()), default=0)


def protocol_prefix(data: bytes, tls_third_byte_max: int = 0x09) -> str | None:
    tls = len(data) >= 3 and data[0] in (0x16, 0x17) and data[1] == 0x03
    if tls and data[2] <= tls_third_byte_max:
        return "tls"
    if data.startswith(HTTP_PREFIXES):
        return "http"
    return None


def evaluate(data: bytes, tls_third_byte_max: int = 0x09) -> dict[str, Any]:
    """Algorithm 1 on one payload: the measured values, the exemptions that hold, `yes`."""
    n = len(data)
    popcount = popcount_per_byte(data)
    first_six = n >= 6 and printable_count(data[:6]) == 6
    fraction = printable_count(data) / n if n else 0.0
    run = longest_printable_run(data)
    protocol = protocol_prefix(data, tls_third_byte_max)
    fired = [
        name
        for name, holds in (
            ("ex1_popcount", popcount <= 3.4 or popcount >= 4.6),
            ("ex2_first_six_printable", first_six),
            ("ex3_printable_fraction", fraction > 0.5),
            ("ex4_printable_run", run > 20),
            ("ex5_protocol", protocol is not None),
        )
        if holds
    ]
    return {
        "yes": not fired,
        "exemption": fired[0] if fired else None,
        "exemptions": fired,
        "popcount": popcount,
        "first_six_printable": first_six,
        "printable_fraction": fraction,
        "longest_printable_run": run,
        "protocol": protocol,
        "length": n,
    }


class FetStream(Stream):
    __slots__ = ("tls_third_byte_max",)

    def __init__(self, tls_third_byte_max: int) -> None:
        self.tls_third_byte_max = tls_third_byte_max

    def feed(self, rev: bool, data: bytes) -> Update:
        if rev:
            return None, False  # the server spoke first: still waiting for the client
        return evaluate(data, self.tls_third_byte_max), True


class FetAnalyzer(Analyzer):
    """`fet.*`: yes (would be blocked), exemption (first that held, e.g. "ex1_popcount"),
    exemptions (all that held), popcount, first_six_printable, printable_fraction,
    longest_printable_run, protocol ("tls", "http" or None), length."""

    name = "fet"
    limit = 8192

    def __init__(self, tls_third_byte_max: int = 0x09) -> None:
        self.tls_third_byte_max = tls_third_byte_max

    def new_tcp(self, info: FlowInfo) -> Stream:
        return FetStream(self.tls_third_byte_max)
