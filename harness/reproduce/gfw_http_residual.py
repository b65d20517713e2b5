"""The GFW's HTTP keyword filter and its penalty box, reproduced with the `http_filter`
technique configured as the GFW's (the shipped gfw-2023 profile has no HTTP keyword rule)
and real HTTP requests over real TCP connections, each on its own port.

Rambert, Weinberg, Barradas, Christin: "Chinese Wall or Swiss Cheese? Keyword filtering in
the Great Firewall of China", WWW 2021. The figures (from the paper's measurements, as its
abstract and published summaries of its findings state them; section numbers not
re-checked here):
  - a request with a forbidden keyword is terminated by injected TCP RSTs, on any TCP port;
  - keywords count only in the request path and the Host header; Cookie and custom headers
    and POST bodies are not inspected;
  - even there only about 75 % of such requests draw the RSTs;
  - afterwards 50-75 % of later connections on the same (client IP, server IP, server port)
    are blocked for about 90 s, strictly that 3-tuple: other ports of the server work;
  - requests containing "search" are checked against a longer list (about 60 more terms).
The case's censor: keyword "falun", action rst x3, probability 0.75 (so the 75 % row tests
the per-flow draw, not a free parameter), residual 90 s (quick mode: 3 s). Shares agree when
the published value lies in the 99.9 % Wilson interval (95 % is printed too).

Findings (not tuned away): http_filter searches the whole first client segment, so a
keyword in a Cookie header or in a POST body sent with the head is caught; and its penalty
box blocks every later connection of the 3-tuple, not 50-75 %. The "search" sublist has no
equivalent (one keyword list) and is not reproduced.
"""

from __future__ import annotations

import time
from pathlib import Path

from censor_sims.techniques.http_filter import HttpFilter
from harness.reproduce.core import CaseReport, Measured, Published, Row, count_row, share_text
from harness.reproduce.lab import Lab, blocked
from harness.reproduce.payloads import http_get
from harness.scoring.stats import wilson_interval

NAME = "gfw-http-residual"
TITLE = "GFW HTTP keyword filtering and its penalty box (Rambert et al., WWW 2021)"
PAPER = "Rambert et al., WWW 2021"
KEYWORD = "falun"
RST_SHARE = 0.75
RESIDUAL_FULL, RESIDUAL_QUICK = 90.0, 3.0
Z_999 = 3.290527
# Later connections during the window (shares of W): 6 per reset 3-tuple. A 50-75 % box
# lets 25-50 % through, so all of 18 (quick: 3 tuples) blocked has probability <= 0.6 %.
PROBES_INSIDE = (0.15, 0.3, 0.45, 0.6, 0.75, 0.85)


def _requests() -> dict[str, bytes]:
    body = f"q={KEYWORD}".encode()
    post = (f"POST /form HTTP/1.1\r\nHost: news.example\r\nContent-Type: application/"
            f"x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    post += body
    cookie = (f"GET /weather HTTP/1.1\r\nHost: news.example\r\nCookie: q={KEYWORD}\r\n"
              "\r\n").encode()  # fmt: skip
    return {
        "path": http_get("news.example", f"/search?q={KEYWORD}"),
        "host": http_get(f"{KEYWORD}.news.example", "/weather"),
        "cookie": cookie,
        "body": post,
        "clean": http_get("news.example", "/weather"),
    }


def _share_row(quantity: str, published: Published, hits: int, n: int, target: float) -> Row:
    value, spread = share_text(hits, n)
    low, high = wilson_interval(hits, n, Z_999)
    return Row(quantity, published,
               Measured(value, f"{spread}; 99.9% Wilson {low:.1%}-{high:.1%}", n),
               low <= target <= high,
               f"{target:.0%} inside the 99.9% Wilson interval (95% would fail a true "
               f"{target:.0%} censor once in 20 runs)")  # fmt: skip


def run(quick: bool, workdir: Path) -> CaseReport:
    n_share, n_other, n_hits = (20, 10, 3) if quick else (100, 30, 5)
    residual = RESIDUAL_QUICK if quick else RESIDUAL_FULL
    technique = HttpFilter(name="gfw-http-keyword", keywords=[KEYWORD], action="rst",
                           rst_count=3, residual=residual, probability=RST_SHARE)  # fmt: skip
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"technique": "http_filter (case-configured)", "keyword": KEYWORD,
                         "action": "rst x3", "probability": RST_SHARE,
                         "residual_s": residual})  # fmt: skip
    reqs = _requests()
    counts = {"path": n_share, "host": n_share, "cookie": n_other, "body": n_other,
              "clean": n_other}  # fmt: skip
    total = sum(counts.values())
    with Lab(workdir) as lab:
        lab.echo("voip", f"9000-{9000 + total + n_hits}")  # + a fresh port per hit
        lab.censor(technique)
        host = lab.addr("voip")
        jobs, port = [], 9000
        for where, count in counts.items():
            for _ in range(count):
                jobs.append({"id": where, "host": host, "port": port, "timeout": 1.0,
                             "payloads": [reqs[where].hex()]})  # fmt: skip
                port += 1
        results = lab.conns(jobs, limit=50)
        by: dict[str, list[dict]] = {}
        for j, r in zip(jobs, results, strict=True):
            by.setdefault(j["id"], []).append(r)
        hits = [r for r in by["path"] if r["outcome"] == "ConnectionResetError"][:n_hits]
        box = _penalty_box(lab, hits, port, residual, reqs["clean"].hex())
    resets = {w: sum(r["outcome"] == "ConnectionResetError" for r in rs) for w, rs in by.items()}
    where = "keyword locations"
    report.rows += [
        _share_row(f"keyword in the path, ports 9000-{9000 + n_share - 1}: share reset",
                   Published("about 75% (on any TCP port)", PAPER, where), resets["path"],
                   n_share, RST_SHARE),
        _share_row("keyword in the Host header: share reset",
                   Published("about 75%", PAPER, where), resets["host"], n_share, RST_SHARE),
        count_row("the same request without the keyword",
                  Published("not blocked", PAPER, where),
                  sum(not blocked(r) for r in by["clean"]), n_other, "requests answered"),
    ]  # fmt: skip
    for loc, label in (("cookie", "a Cookie header"), ("body", "a POST body (same segment)")):
        row = count_row(f"keyword in {label}",
                        Published("not inspected: never reset", PAPER, where),
                        n_other - resets[loc], n_other, "requests not reset")  # fmt: skip
        row.finding, row.note = (
            True,
            (
                "finding: http_filter searches the whole first client segment, not only the path "
                "and Host header"
            ),
        )
        report.rows.append(row)
    report.rows += box
    return report


def _penalty_box(lab: Lab, hits: list[dict], fresh: int, residual: float,
                 clean: str) -> list[Row]:  # fmt: skip
    """Clean requests on reset 3-tuples at 0.3/0.5/0.7 W (share blocked), 0.9 W and 1.1 W
    (the bracket), and to a fresh port at 0.5 W (the scope). Probes do not restart it."""
    if not hits:
        raise RuntimeError("no keyword request was reset: no penalty box to measure")
    host, jobs = lab.addr("voip"), []
    for k, hit in enumerate(hits):
        for frac in (*PROBES_INSIDE, 0.9, 1.1):
            due = hit["started"] + frac * residual
            jobs.append({"id": (k, frac), "host": host, "port": hit["port"], "timeout": 1.0,
                         "at_abs": due, "payloads": [clean]})  # fmt: skip
        jobs.append({"id": (k, "other"), "host": host, "port": fresh + k, "timeout": 1.0,
                     "at_abs": hit["started"] + 0.5 * residual, "payloads": [clean]})  # fmt: skip
    ids = [j.pop("id") for j in jobs]
    wait = max(j["at_abs"] for j in jobs) - time.time() + 60
    out = dict(zip(ids, lab.conns(jobs, timeout=wait), strict=True))
    ks = range(len(hits))
    inside = [out[(k, f)] for k in ks for f in PROBES_INSIDE]
    later = sum(map(blocked, inside))
    lo = min(out[(k, 0.9)]["started"] - hits[k]["started"] for k in ks)
    hi = max(out[(k, 1.1)]["started"] - hits[k]["started"] for k in ks)
    bracket = all(blocked(out[(k, 0.9)]) and not blocked(out[(k, 1.1)]) for k in ks)
    value, spread = share_text(later, len(inside))
    share = Row(
        "later clean connections on the 3-tuple blocked during the box",
        Published("50-75% (so 25-50% get through)", PAPER, "penalty box"),
        Measured(value, spread, len(inside)), later < len(inside),
        "some later connection gets through: for a 50-75% box all of 18 probes blocked has "
        "probability <= 0.6%",
        "finding: the shipped residual penalty blocks every later connection of the 3-tuple",
        finding=True)  # fmt: skip
    return [
        Row("penalty box duration on (client, server, port)",
            Published("about 90 s", PAPER, "penalty box"),
            Measured(f"clean requests blocked at 0.9 x W, "
                     f"{'open' if bracket else 'NOT open'} at 1.1 x W",
                     f"window in ({lo:.1f}, {hi:.1f}] s; configured {residual:g} s", len(hits)),
            bracket, "bracket [0.9 W, 1.1 W] of the configured W (probe resolution)",
            "" if residual == RESIDUAL_FULL else f"quick mode: W = {residual:g} s"),
        share,
        count_row("other ports of the same server during the box",
                  Published("unaffected: strictly the 3-tuple", PAPER, "penalty box"),
                  sum(not blocked(out[(k, "other")]) for k in ks), len(hits),
                  "clean requests to a fresh port answered at 0.5 x W"),
    ]  # fmt: skip
