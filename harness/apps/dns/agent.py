"""The `dns` client, inside: `python -m harness.apps.dns.agent --resolver IP NAME=ADDR...`.

Asks the resolver for each name's A record in turn, as a stub resolver does (one UDP query,
retried after --timeout, up to --attempts), and compares the answer with the authoritative
record given as ADDR. Prints one {"event": "result"} line: WorkloadMetrics' fields (items =
names, completed = names answered with exactly the authoritative address, duration_ms = all
names, item_ms = per answered name) plus outcome and error (the first wrong answer's class:
a forged or missing address is dns-failure, no answer is timeout).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from typing import Any

from harness.agent_io import ms_since, work_and_report
from harness.net.resolve import lookup_a
from harness.scoring.stats import percentile


def resolve_all(args: argparse.Namespace) -> dict[str, Any]:
    expected = dict(item.split("=", 1) for item in args.records)
    started = time.monotonic()
    times: list[float] = []
    failures: list[tuple[str, str]] = []  # (outcome, why)
    for name, address in expected.items():
        t0 = time.monotonic()
        found, what = asyncio.run(
            lookup_a(name, args.resolver, timeout=args.timeout, attempts=args.attempts)
        )
        got = set(found)
        if got == {address}:
            times.append(ms_since(t0))
        elif what == "timeout":
            failures.append(("timeout", f"{name}: no answer from {args.resolver}"))
        else:
            found = ", ".join(sorted(got)) or what
            failures.append(("dns-failure", f"{name}: {found}, authoritative {address}"))
    return {
        "event": "result",
        "outcome": failures[0][0] if failures else "ok",
        "error": failures[0][1] if failures else None,
        "items": len(expected),
        "completed": len(times),
        "duration_ms": ms_since(started),
        "item_ms_p50": _ms(percentile(times, 50)),
        "item_ms_p95": _ms(percentile(times, 95)),
        "failures": [why for _, why in failures],
    }


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.dns.agent")
    parser.add_argument("--resolver", required=True, help="IPv4 address of the resolver")
    parser.add_argument("--timeout", type=float, default=2.0, help="seconds per attempt")
    parser.add_argument("--attempts", type=int, default=2)
    parser.add_argument("records", nargs="+", help="NAME=ADDRESS, the authoritative A record")
    args = parser.parse_args(argv)
    return work_and_report(lambda: resolve_all(args))


if __name__ == "__main__":
    sys.exit(main())
