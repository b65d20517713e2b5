"""The `web` client, inside: `python -m harness.apps.web.agent --page URL --ca CA ...`.

Loads a page as a browser does, with curl: the document first, then every resource it
links (href/src), in parallel over up to 6 connections. Prints one {"event": "result"}
line: WorkloadMetrics' fields (items = the page + --resources, completed = those fetched
with HTTP 200, duration_ms = page-load time: start to the last resource) plus outcome and
error (the first failure's class when the page is incomplete).
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from html.parser import HTMLParser
from typing import Any

from harness.agent_io import ms_since, work_and_report
from harness.apps.curl import Transfer, curl_argv, fetch_all, fetch_into, outcome
from harness.scoring.stats import percentile


class _Links(HTMLParser):
    """The absolute https:// URLs a page links (href, src), in order."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value and value.startswith("https://"):
                self.urls.append(value)


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def load_page(args: argparse.Namespace) -> dict[str, Any]:
    argv = curl_argv(args.ca, args.timeout, args.socks)
    started = time.monotonic()
    body = io.BytesIO()
    page = fetch_into(argv, args.page, body, args.timeout)
    transfers: list[Transfer] = [page]
    if page.ok:
        links = _Links()
        links.feed(body.getvalue().decode(errors="replace"))
        transfers += fetch_all(argv, links.urls, args.timeout)
    duration = ms_since(started)
    done = [t for t in transfers if t.ok]
    failed = [t for t in transfers if not t.ok]
    items = 1 + args.resources
    complete = len(done) == items
    return {
        "event": "result",
        "outcome": "ok" if complete else outcome(failed[0]) if failed else "error",
        "error": None if complete else (failed[0].failure() if failed else "resources missing"),
        "items": items,
        "completed": len(done),
        "duration_ms": duration,
        "bytes": sum(t.bytes for t in transfers),
        "item_ms_p50": _ms(percentile([t.ms for t in done], 50)),
        "item_ms_p95": _ms(percentile([t.ms for t in done], 95)),
        "failures": [t.failure() for t in failed],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.web.agent")
    parser.add_argument("--page", required=True, help="https URL of the page")
    parser.add_argument("--resources", type=int, required=True, help="resources it links")
    parser.add_argument("--ca", required=True, help="PEM file of the run CA")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per transfer")
    parser.add_argument("--socks", help="the tool's SOCKS5 proxy, host:port")
    args = parser.parse_args(argv)
    return work_and_report(lambda: load_page(args))


if __name__ == "__main__":
    sys.exit(main())
