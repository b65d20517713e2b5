"""The `download` client, inside: `python -m harness.apps.download.agent --url URL ...`.

Fetches the published SHA-256 (URL.sha256), then the update itself with curl, hashing it
as it arrives (nothing is written to disk), and checks it, as an updater does. Prints one
{"event": "result"} line: WorkloadMetrics' fields (items 1, completed 1 when the update
arrived whole and its digest matched; throughput_mbps over the transfer: request sent to
last byte, also of a download cut short) plus outcome and error.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
import time
from typing import Any

from harness.agent_io import ms_since, work_and_report
from harness.apps.curl import curl_argv, fetch_into, outcome


class _Digest(io.RawIOBase):
    """A sink that hashes what it is given and counts it."""

    def __init__(self) -> None:
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self.sha.update(data)
        self.size += len(data)
        return len(data)


def download(args: argparse.Namespace) -> dict[str, Any]:
    argv = curl_argv(args.ca, args.timeout, args.socks)
    started = time.monotonic()
    result: dict[str, Any] = {"event": "result", "items": 1, "completed": 0, "bytes": 0}
    published = io.BytesIO()
    digest_fetch = fetch_into(argv, f"{args.url}.sha256", published, args.timeout)
    if not digest_fetch.ok:
        error = digest_fetch.failure()
        return result | {
            "outcome": outcome(digest_fetch),
            "error": error,
            "failures": [error],
            "duration_ms": ms_since(started),
        }
    expected = published.getvalue().decode(errors="replace").split()[0]
    sink = _Digest()
    remaining = max(1.0, args.timeout - (time.monotonic() - started))
    update = fetch_into(curl_argv(args.ca, remaining, args.socks), args.url, sink, remaining)
    result.update(duration_ms=ms_since(started), bytes=sink.size)
    transfer_s = float(update.info.get("time_total", 0)) - float(
        update.info.get("time_pretransfer", 0)
    )
    if transfer_s > 0:  # also of a download cut short: how fast it went until then
        result["throughput_mbps"] = round(sink.size * 8 / transfer_s / 1e6, 2)
    if not update.ok:
        error = f"{update.failure()} ({sink.size} bytes arrived)"
        return result | {"outcome": outcome(update), "error": error, "failures": [error]}
    if sink.sha.hexdigest() != expected:
        error = f"{args.url}: SHA-256 {sink.sha.hexdigest()} != published {expected}"
        return result | {"outcome": "error", "error": error, "failures": [error]}
    return result | {
        "outcome": "ok",
        "error": None,
        "completed": 1,
        "item_ms_p50": update.ms,
        "item_ms_p95": update.ms,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.download.agent")
    parser.add_argument("--url", required=True, help="https URL of the update")
    parser.add_argument("--ca", required=True, help="PEM file of the run CA")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for it all")
    parser.add_argument("--socks", help="the tool's SOCKS5 proxy, host:port")
    args = parser.parse_args(argv)
    return work_and_report(lambda: download(args))


if __name__ == "__main__":
    sys.exit(main())
