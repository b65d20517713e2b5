"""The GFW's HTTP keyword filter and its residual block, reproduced with the `http_filter`
technique configured as the GFW's (the shipped gfw-2023 profile has no HTTP keyword rule)
and real HTTP requests over real TCP connections.

Rambert, Weinberg, Barradas, Christin: "Chinese Wall or Swiss Cheese? Keyword filtering in
the Great Firewall of China", WWW 2021. Its abstract: when the GFW detects a forbidden
keyword in unencrypted HTTP it "terminates the offending stream by injecting TCP RST
packets, and blocks further traffic between the same two hosts for a few minutes". The
commonly cited duration is about 90 s, on (client IP, server IP, server port) (the figure
the gfw-2023 profile uses for its SNI rule); full mode configures 90 s, quick mode 3 s.

Checked here: a request with the keyword is reset, the same request without it is not;
clean requests to the same (client, server, port) are blocked for the window (bracketed by
probes at 0.9 W and 1.1 W; the penalty does not restart on probes).

Finding (not tuned away): the paper's abstract says the block covers the same two hosts,
but the shipped residual penalty is per (client, server, port): another port of the same
server works during the window, so that row does not agree. Not reproduced at all: the
paper's finding that keywords count only in some places of a request, and that requests
containing "search" are checked against a longer list (http_filter searches the whole
request head against one list).
"""

from __future__ import annotations

from pathlib import Path

from censor_sims.techniques.http_filter import HttpFilter
from harness.reproduce.core import CaseReport, Measured, Published, Row, count_row
from harness.reproduce.lab import Lab, blocked
from harness.reproduce.payloads import http_get

NAME = "gfw-http-residual"
TITLE = "GFW HTTP keyword filtering and residual block (Rambert et al., WWW 2021)"
PAPER = "Rambert et al., WWW 2021"
KEYWORD = "falun"
RESIDUAL_FULL, RESIDUAL_QUICK = 90.0, 3.0
FINDING_HOSTS = (
    "finding: the shipped residual penalty is per (client, server, port); the WWW 2021 "
    "abstract says further traffic between the same two hosts is blocked"
)


def run(quick: bool, workdir: Path) -> CaseReport:
    n = 3 if quick else 20
    residual = RESIDUAL_QUICK if quick else RESIDUAL_FULL
    technique = HttpFilter(name="gfw-http-keyword", keywords=[KEYWORD], action="rst",
                           rst_count=3, residual=residual)  # fmt: skip
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"technique": "http_filter (case-configured)", "keyword": KEYWORD,
                         "action": "rst x3", "residual_s": residual})  # fmt: skip
    hit = http_get("news.example", f"/search?q={KEYWORD}").hex()
    clean = http_get("news.example", "/weather").hex()
    with Lab(workdir) as lab:
        lab.echo("voip", f"9000-{9000 + 2 * n + 3}")
        lab.censor(technique)
        host = lab.addr("voip")

        def job(port: int, payload: str, tag: str, at: float = 0.0) -> dict:
            return {"id": tag, "host": host, "port": port, "at": at, "timeout": 1.5,
                    "payloads": [payload]}  # fmt: skip

        jobs = [job(9000 + i, hit, "keyword") for i in range(n)]
        jobs += [job(9000 + n + i, clean, "clean") for i in range(n)]
        base = 2 * n + 9000
        jobs += [job(base, hit, "violate", at=0.2),
                 job(base, clean, "probe-0.9", at=0.2 + 0.9 * residual),
                 job(base, clean, "probe-1.1", at=0.2 + 1.1 * residual),
                 job(base + 1, clean, "other-port", at=0.2 + 0.5 * residual)]  # fmt: skip
        results = lab.conns(jobs, timeout=residual * 1.2 + 60)
        rsts = len(lab.events("rst"))
    by: dict[str, list[dict]] = {}
    for j, r in zip(jobs, results, strict=True):
        by.setdefault(j["id"], []).append(r)
    reset = sum(r["outcome"] == "ConnectionResetError" for r in by["keyword"])
    report.rows += [
        count_row(f"request with the keyword ({KEYWORD!r} in the URL)",
                  Published("stream terminated by injected TCP RSTs", PAPER, "abstract"),
                  reset, n, "connections reset (ConnectionResetError)"),
        count_row("the same request without the keyword",
                  Published("not blocked", PAPER, "abstract"),
                  sum(not blocked(r) for r in by["clean"]), n, "requests answered"),
    ]  # fmt: skip
    violate, early, late = by["violate"][0], by["probe-0.9"][0], by["probe-1.1"][0]
    dt_early, dt_late = (early["started"] - violate["started"],
                         late["started"] - violate["started"])  # fmt: skip
    report.rows.append(Row(
        "residual block of clean requests to the same (client, server, port)",
        Published("a few minutes (abstract); about 90 s as commonly cited", PAPER, "abstract"),
        Measured(f"blocked at {dt_early:.1f} s ({early['outcome']}), "
                 f"{'open' if not blocked(late) else 'STILL BLOCKED'} at {dt_late:.1f} s",
                 f"window in ({dt_early:.1f}, {dt_late:.1f}] s; configured {residual:g} s", 1),
        blocked(violate) and blocked(early) and not blocked(late),
        "bracket [0.9 W, 1.1 W] of the configured W (probe resolution)",
        "" if residual == RESIDUAL_FULL else f"quick mode: W = {residual:g} s instead of 90 s",
    ))  # fmt: skip
    other = by["other-port"][0]
    row = count_row("residual scope: another port of the same server at 0.5 W",
                    Published("blocked too: 'between the same two hosts'", PAPER, "abstract"),
                    int(blocked(other)), 1, "clean requests to another port blocked")  # fmt: skip
    row.finding, row.note = True, FINDING_HOSTS
    report.rows.append(row)
    report.configured["rst_events"] = rsts
    return report
