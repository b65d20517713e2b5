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
the per-flow draw, not a free parameter), keywords counted in the path and Host header only
(`keyword_in`), residual 90 s (quick mode: 3 s) blocking each later connection with
probability 0.625 (`residual_share`, the middle of the published 50-75 %). Shares agree when
the published value (or range) meets the 99.9 % Wilson interval (95 % is printed too).

The first runs of this case found http_filter searching the whole first client segment (a
keyword in a Cookie header or a POST body was caught) and its penalty box blocking every
later connection; both are technique parameters now. The "search" sublist has no
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
BOX_SHARE = 0.625  # the middle of the published 50-75 %
RESIDUAL_FULL, RESIDUAL_QUICK = 90.0, 3.0
Z_999 = 3.290527
# Later connections during the window (shares of W): 6 per reset 3-tuple. At the window's
# edges, 3 probes per 3-tuple at 0.9 W (one blocked shows the box still there: with a 50-75 %
# box none of 9, quick mode, is blocked with probability <= 0.02 %) and 1 at 1.1 W.
PROBES_INSIDE = (0.15, 0.3, 0.45, 0.6, 0.75, 0.85)
PROBES_EDGE = 3


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
                           keyword_in=["path", "host"], rst_count=3, residual=residual,
                           residual_share=BOX_SHARE, probability=RST_SHARE)  # fmt: skip
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"technique": "http_filter (case-configured)", "keyword": KEYWORD,
                         "keyword_in": "path, host", "action": "rst x3",
                         "probability": RST_SHARE, "residual_s": residual,
                         "residual_share": BOX_SHARE})  # fmt: skip
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
        published = Published("not inspected: never reset", PAPER, where)
        spared = n_other - resets[loc]
        report.rows.append(
            count_row(f"keyword in {label}", published, spared, n_other, "requests not reset")
        )
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
        edges = [(0.9, i) for i in range(PROBES_EDGE)] + [(1.1, 0)]
        for frac, i in [(f, 0) for f in PROBES_INSIDE] + edges:
            due = hit["started"] + frac * residual
            jobs.append({"id": (k, frac, i), "host": host, "port": hit["port"], "timeout": 1.0,
                         "at_abs": due, "payloads": [clean]})  # fmt: skip
        jobs.append({"id": (k, "other"), "host": host, "port": fresh + k, "timeout": 1.0,
                     "at_abs": hit["started"] + 0.5 * residual, "payloads": [clean]})  # fmt: skip
    ids = [j.pop("id") for j in jobs]
    wait = max(j["at_abs"] for j in jobs) - time.time() + 60
    out = dict(zip(ids, lab.conns(jobs, timeout=wait), strict=True))
    ks = range(len(hits))
    inside = [out[(k, f, 0)] for k in ks for f in PROBES_INSIDE]
    later = sum(map(blocked, inside))
    near_end = [(k, out[(k, 0.9, i)]) for k in ks for i in range(PROBES_EDGE)]
    after = [(k, out[(k, 1.1, 0)]) for k in ks]
    lo = (
        min(r["started"] - hits[k]["started"] for k, r in near_end if blocked(r))
        if any(blocked(r) for _, r in near_end)
        else 0.9 * residual
    )
    hi = max(r["started"] - hits[k]["started"] for k, r in after)
    bracket = any(blocked(r) for _, r in near_end) and not any(blocked(r) for _, r in after)
    value, spread = share_text(later, len(inside))
    low, high = wilson_interval(later, len(inside), Z_999)
    share = Row(
        "later clean connections on the 3-tuple blocked during the box",
        Published("50-75% (so 25-50% get through)", PAPER, "penalty box"),
        Measured(value, f"{spread}; 99.9% Wilson {low:.1%}-{high:.1%}", len(inside)),
        low <= 0.75 and high >= 0.5,
        "the published 50-75% meets the 99.9% Wilson interval of the measured share")  # fmt: skip
    return [
        Row("penalty box duration on (client, server, port)",
            Published("about 90 s", PAPER, "penalty box"),
            Measured(f"clean requests blocked at 0.9 x W, "
                     f"{'open' if bracket else 'NOT open'} at 1.1 x W",
                     f"window in ({lo:.1f}, {hi:.1f}] s; configured {residual:g} s", len(hits)),
            bracket, "bracket [0.9 W, 1.1 W] of the configured W (probe resolution): one of "
            f"{PROBES_EDGE} probes per 3-tuple blocked at 0.9 W (the box spares some), none at "
            "1.1 W",
            "" if residual == RESIDUAL_FULL else f"quick mode: W = {residual:g} s"),
        share,
        count_row("other ports of the same server during the box",
                  Published("unaffected: strictly the 3-tuple", PAPER, "penalty box"),
                  sum(not blocked(out[(k, "other")]) for k in ks), len(hits),
                  "clean requests to a fresh port answered at 0.5 x W"),
    ]  # fmt: skip
