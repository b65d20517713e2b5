"""The GFW's blocking of fully encrypted traffic, reproduced on the `gfw-2023` profile's
`gfw-fet` technique with real TCP connections carrying crafted first payloads.

Wu, Sippe, Sivakumar, Burg, Anderson, Wang, Bock, Houmansadr, Levin, Wustrow: "How the
Great Firewall of China Detects and Blocks Fully Encrypted Traffic", USENIX Security 2023
(artifact gfw-report/usenixsecurity23-artifact). Published behaviour checked here:
  - only the client's first payload is examined; it is exempt when any of Ex1 average
    popcount/byte <= 3.4 or >= 4.6, Ex2 first 6 bytes printable, Ex3 more than 50 %
    printable, Ex4 more than 20 contiguous printable bytes, Ex5 a TLS or HTTP prefix
    (Algorithm 1);
  - a payload none exempts is blocked probabilistically, about 26 % of connections;
  - after a block the (client, server, port) stays blocked up to 180 s, other ports of the
    same server still work.

Exemption rows run on a censor whose fet_block has probability 1 (so one connection shows
the classification; at 0.26 a non-exempt payload passes 74 % of the time), each payload on
its own port. The share and residual rows run the profile's technique as shipped
(probability 0.26, drop), quick mode with a 3 s residual instead of 180 s; every
connection of the share row uses its own port so no residual penalty touches another.
The 26 % row prints the 95 % Wilson interval of the measured share (and its width: quick
mode's fewer connections make it wide) and agrees when 0.26 lies inside the 99.9 % Wilson
interval: with 95 %, a censor blocking exactly 26 % would fail the row once in 20 runs,
which a CI test cannot carry; with 99.9 %, once in 1000.
"""

from __future__ import annotations

import time
from pathlib import Path

from censor_sims.analyzers.fet import evaluate
from harness.reproduce.core import CaseReport, Measured, Published, Row, share_text
from harness.reproduce.lab import Lab, blocked, profile_technique
from harness.reproduce.payloads import exemption_pairs, fully_encrypted, http_get
from harness.scoring.stats import wilson_interval

NAME = "gfw-fet-2023"
TITLE = "GFW blocking of fully encrypted traffic (Wu et al., USENIX Security 2023)"
PAPER = "Wu et al., USENIX Security 2023"
PUBLISHED_SHARE = 0.26
Z_999 = 3.290527  # two-sided 99.9% normal quantile
RESIDUAL_FULL, RESIDUAL_QUICK = 180.0, 3.0
RULES = {
    "ex1_popcount": "Ex1: popcount/byte <= 3.4 or >= 4.6",
    "ex2_first_six_printable": "Ex2: first 6 bytes printable",
    "ex3_printable_fraction": "Ex3: more than 50% printable",
    "ex4_printable_run": "Ex4: more than 20 contiguous printable bytes",
    "ex5_protocol": "Ex5: TLS [16|17] 03 [00-09] or HTTP GET/PUT/POST/HEAD prefix",
}


def _describe(data: bytes) -> str:
    v = evaluate(data)
    return (f"popcount {v['popcount']:.2f}, first six printable {v['first_six_printable']}, "
            f"{v['printable_fraction']:.0%} printable, longest run {v['longest_printable_run']}, "
            f"prefix {data[:3].hex()}")  # fmt: skip


def _exemptions(lab: Lab) -> list[Row]:
    pairs = exemption_pairs()
    jobs = []
    for i, (exempt, miss, _, _) in enumerate(pairs.values()):
        for j, payload in enumerate((exempt, miss)):
            jobs.append({"host": lab.addr("voip"), "port": 7000 + 2 * i + j, "timeout": 1.5,
                         "payloads": [payload.hex()]})  # fmt: skip
    results = lab.conns(jobs)
    rows = []
    for i, (rule, (exempt, miss, what, miss_what)) in enumerate(pairs.items()):
        passed, dropped = not blocked(results[2 * i]), blocked(results[2 * i + 1])
        rows.append(Row(
            RULES[rule], Published("exempt: not blocked; otherwise blockable", PAPER,
                                   "Algorithm 1"),
            Measured(f"{what}: {'passed' if passed else 'BLOCKED'}; near miss ({miss_what}): "
                     f"{'blocked' if dropped else 'PASSED'}",
                     f"exempt payload {_describe(exempt)}; near miss {_describe(miss)}", 2),
            passed and dropped,
            "both: the exempt payload passes and its near miss is blocked (probability 1 here)",
        ))  # fmt: skip
    return rows


def run(quick: bool, workdir: Path) -> CaseReport:
    n = 60 if quick else 300
    residual = RESIDUAL_QUICK if quick else RESIDUAL_FULL
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"profile": "gfw-2023 (technique gfw-fet)", "probability": 0.26,
                         "residual_s": residual, "connections": n,
                         "exemption_rows": "fet_block at probability 1, no residual"})  # fmt: skip
    with Lab(workdir / "exemptions") as lab:
        lab.echo("voip", "7000-7009")
        lab.censor(profile_technique("gfw-2023", "gfw-fet", probability=1.0, residual=0))
        report.rows += _exemptions(lab)
    with Lab(workdir / "share") as lab:
        lab.echo("voip", f"8000-{8000 + n + 9}")
        lab.censor(profile_technique("gfw-2023", "gfw-fet", residual=residual))
        host = lab.addr("voip")
        jobs = [{"host": host, "port": 8000 + i, "timeout": 1.0,
                 "payloads": [fully_encrypted(i).hex()]} for i in range(n)]  # fmt: skip
        results = lab.conns(jobs, limit=50)
        hits = [r for r in results if blocked(r)]
        value, spread = share_text(len(hits), n)
        low, high = wilson_interval(len(hits), n, Z_999)
        spread += f"; 99.9% Wilson {low:.1%}-{high:.1%}"
        report.rows.append(Row(
            "share of non-exempt connections blocked",
            Published("about 26%", PAPER, "blocking probability"),
            Measured(value, spread, n), low <= PUBLISHED_SHARE <= high,
            "0.26 inside the 99.9% Wilson interval of the measured share (95% would fail a "
            "true 26% censor once in 20 runs)"))  # fmt: skip
        report.rows += _residual(lab, hits[:2], n, residual)
    return report


def _residual(lab: Lab, hits: list[dict], n: int, residual: float) -> list[Row]:
    """Probe blocked ports with an exempt payload at 0.5, 0.9 and 1.1 x the residual, and a
    fresh port of the same server at 0.5 x (the penalty is per 3-tuple, and a probe inside
    it does not restart the timer, so the same 3-tuple can be probed again)."""
    if not hits:
        raise RuntimeError("no connection was blocked: nothing to measure the residual on")
    host, get = lab.addr("voip"), http_get().hex()
    jobs = []
    for k, hit in enumerate(hits):
        for frac in (0.5, 0.9, 1.1):
            due = hit["started"] + frac * residual
            jobs.append({"id": (k, frac), "host": host, "port": hit["port"], "timeout": 1.0,
                         "at_abs": due, "payloads": [get]})  # fmt: skip
        jobs.append({"id": (k, "fresh"), "host": host, "port": 8000 + n + k, "timeout": 1.0,
                     "at_abs": hit["started"] + 0.5 * residual, "payloads": [get]})  # fmt: skip
    ids = [j.pop("id") for j in jobs]
    wait = max(j["at_abs"] for j in jobs) - time.time() + 60
    out = dict(zip(ids, lab.conns(jobs, timeout=wait), strict=True))
    inside = all(blocked(out[(k, f)]) for k in range(len(hits)) for f in (0.5, 0.9))
    after = all(not blocked(out[(k, 1.1)]) for k in range(len(hits)))
    fresh = sum(not blocked(out[(k, "fresh")]) for k in range(len(hits)))
    lo = min(out[(k, 0.9)]["started"] - hits[k]["started"] for k in range(len(hits)))
    hi = max(out[(k, 1.1)]["started"] - hits[k]["started"] for k in range(len(hits)))
    return [
        Row(
            "residual block on (client, server, port)",
            Published("up to 180 s", PAPER, "residual censorship"),
            Measured(
                f"HTTP GET on a blocked port: blocked at 0.5 and 0.9 x, "
                f"{'open' if after else 'STILL BLOCKED'} at 1.1 x the configured window",
                f"window in ({lo:.1f}, {hi:.1f}] s; configured {residual:g} s",
                len(hits),
            ),
            inside and after,
            "bracket [0.9 W, 1.1 W] of the configured W: probe resolution; the exempt probe "
            "shows the penalty blocks whatever the 3-tuple carries",
            "" if residual == RESIDUAL_FULL else f"quick mode: W = {residual:g} s",
        ),
        Row(
            "other ports of the server during the residual",
            Published("work", PAPER, "residual censorship"),
            Measured(
                f"{fresh}/{len(hits)} HTTP GETs to a fresh port passed at 0.5 x W", "", len(hits)
            ),
            fresh == len(hits),
            "all of them: a deterministic rule",
        ),
    ]
