"""The intranet client, inside: `python -m harness.apps.office_vpn.agent --url URL ...`.

Runs once the office VPN is up: fetches the intranet document --requests times in turn
with curl, the internal name pinned to its address (--resolve: it is in no public zone, as
an intranet name resolved by the office's own DNS), over TLS from the run CA. Prints one
{"event": "result"} line: WorkloadMetrics' fields (items = requests, completed = those
answered with HTTP 200 and --size bytes, duration_ms = all requests, item_ms = per answered
request) plus outcome and error (the first failure's class).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from harness.agent_io import ms_since, work_and_report
from harness.apps.curl import Transfer, curl_argv, fetch_into, outcome
from harness.scoring.stats import percentile


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _why(transfer: Transfer, size: int) -> str | None:
    """Why a request failed, or None when it was answered in full."""
    if not transfer.ok:
        return transfer.failure()
    if transfer.bytes != size:
        return f"{transfer.url}: {transfer.bytes} of {size} bytes"
    return None


def fetch_documents(args: argparse.Namespace) -> dict[str, Any]:
    host = urlsplit(args.url).hostname
    argv = [*curl_argv(args.ca, args.timeout, None), "--resolve", f"{host}:443:{args.resolve}"]
    started = time.monotonic()
    times: list[float] = []
    failures: list[tuple[str, str]] = []  # (outcome, why)
    received = 0
    for _ in range(args.requests):
        transfer = fetch_into(argv, args.url, None, args.timeout)
        received += transfer.bytes
        why = _why(transfer, args.size)
        if why is None:
            times.append(transfer.ms)
        else:
            failures.append((outcome(transfer) if not transfer.ok else "error", why))
    return {
        "event": "result",
        "outcome": failures[0][0] if failures else "ok",
        "error": failures[0][1] if failures else None,
        "items": args.requests,
        "completed": len(times),
        "duration_ms": ms_since(started),
        "bytes": received,
        "item_ms_p50": _ms(percentile(times, 50)),
        "item_ms_p95": _ms(percentile(times, 95)),
        "failures": [why for _, why in failures],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.office_vpn.agent")
    parser.add_argument("--url", required=True, help="https URL of the intranet document")
    parser.add_argument("--resolve", required=True, help="the intranet host's address")
    parser.add_argument("--ca", required=True, help="PEM file of the run CA")
    parser.add_argument("--requests", type=int, default=3)
    parser.add_argument("--size", type=int, required=True, help="bytes each answer carries")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per request")
    args = parser.parse_args(argv)
    return work_and_report(lambda: fetch_documents(args))


if __name__ == "__main__":
    sys.exit(main())
