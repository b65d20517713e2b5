"""The GFW's SNI-based QUIC censorship, reproduced on the `gfw-2023` profile's `gfw-sni-quic`
technique with real QUIC v1 Initials (aioquic) sent from chosen source ports.

Zohaib et al.: "Exposing and Circumventing SNI-based QUIC Censorship of the Great Firewall
of China", USENIX Security 2025 (gfw-report/usenixsecurity25-quic-sni). Published behaviour
checked here:
  - the GFW decrypts QUIC v1 Initials and blocks by the SNI of the ClientHello inside;
  - only when the source port is greater than the destination port;
  - after a block, (source IP, destination IP, destination port) stays blocked 180 s;
  - a dummy UDP datagram sent before the Initial evades it (the GFW inspects only the
    flow's first datagram).

Each server answers by echoing, so "blocked" is an Initial that never comes back. The
residual is the profile's 180 s in full mode, 3 s in quick mode; it is bracketed by probes
with an innocent SNI at 0.9 W and 1.1 W (the penalty does not restart on probes).

The first runs of this case found the dummy datagram not evading: `sni_filter` read an
Initial wherever it came. The profile's technique now sets `quic_first_datagram`, which
looks at the analyzer's `initial_datagram`, as the paper describes.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.reproduce.core import CaseReport, Measured, Published, Row, count_row
from harness.reproduce.lab import Lab, profile_technique
from harness.reproduce.payloads import quic_initial

NAME = "gfw-quic-sni-2025"
TITLE = "GFW SNI-based QUIC censorship (Zohaib et al., USENIX Security 2025)"
PAPER = "Zohaib et al., USENIX Security 2025"
RESIDUAL_FULL, RESIDUAL_QUICK = 180.0, 3.0
BLOCKED_SNI, INNOCENT_SNI = "www.google.com", "example.test"


def _echoed_last(result: dict) -> bool:
    return bool(result.get("echoed")) and result["echoed"][-1]


def run(quick: bool, workdir: Path) -> CaseReport:
    residual = RESIDUAL_QUICK if quick else RESIDUAL_FULL
    block_roles = ["voip"] if quick else ["voip", "proxy", "front"]
    dummy_roles = ["chat"] if quick else ["chat", "dns"]
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"profile": "gfw-2023 (technique gfw-sni-quic)", "residual_s": residual,
                         "blocked_sni": BLOCKED_SNI})  # fmt: skip
    with Lab(workdir) as lab:
        for role in {*block_roles, *dummy_roles}:
            lab.echo(role, "443,8443")
        lab.censor(profile_technique("gfw-2023", "gfw-sni-quic", residual=residual))

        def initial(role: str, sni: str, sport: int, tag: str, at: float = 0.0,
                    dummy: bool = False, port: int = 443) -> dict:  # fmt: skip
            grams = quic_initial(lab.addr(role), sni, port)
            if dummy:
                grams = [os.urandom(60), *grams]
            return {"id": tag, "proto": "udp", "host": lab.addr(role), "port": port,
                    "sport": sport, "at": at, "timeout": 1.0, "gap": 0.05,
                    "payloads": [g.hex() for g in grams]}  # fmt: skip

        jobs = []
        for i, role in enumerate(block_roles):
            jobs += [
                initial(role, BLOCKED_SNI, 400 + i, "low-sport"),  # 400 < 443: spared
                initial(role, INNOCENT_SNI, 41000 + i, "innocent"),
                initial(role, BLOCKED_SNI, 40000 + i, "blocked", at=0.3),
                initial(role, INNOCENT_SNI, 42000 + i, "residual-0.9", at=0.3 + 0.9 * residual),
                initial(role, INNOCENT_SNI, 43000 + i, "other-port", at=0.3 + 0.5 * residual,
                        port=8443),
                initial(role, INNOCENT_SNI, 44000 + i, "residual-1.1", at=0.3 + 1.1 * residual),
            ]  # fmt: skip
        for i, role in enumerate(dummy_roles):
            jobs.append(initial(role, BLOCKED_SNI, 45000 + i, "dummy", dummy=True))
        results = lab.conns(jobs, timeout=residual * 1.2 + 60)
    by: dict[str, list[dict]] = {}
    for job, res in zip(jobs, results, strict=True):
        by.setdefault(job["id"], []).append({**res, "at": job["at"]})

    def answered(tag: str) -> int:
        return sum(map(_echoed_last, by[tag]))

    n = len(block_roles)
    section = "QUIC SNI censorship"
    report.rows += [
        count_row(f"Initial with SNI {BLOCKED_SNI}, source port > 443",
                  Published("blocked", PAPER, section), n - answered("blocked"), n,
                  "Initials dropped"),
        count_row("the same Initial from source port 400 (< 443)",
                  Published("not blocked: only source port > destination port", PAPER,
                            "the source-port rule"),
                  answered("low-sport"), n, "Initials answered"),
        count_row(f"Initial with SNI {INNOCENT_SNI}",
                  Published("not blocked", PAPER, section), answered("innocent"), n,
                  "Initials answered"),
    ]  # fmt: skip
    inside = n - answered("residual-0.9")
    blocked_at = [r["started"] for r in by["blocked"]]
    lo = min(r["started"] - t for r, t in zip(by["residual-0.9"], blocked_at, strict=True))
    hi = max(r["started"] - t for r, t in zip(by["residual-1.1"], blocked_at, strict=True))
    after = answered("residual-1.1")
    report.rows.append(Row(
        "residual block on (source IP, destination IP, destination port)",
        Published("180 s", PAPER, "residual censorship"),
        Measured(f"innocent Initials: {inside}/{n} dropped at 0.9 x W, {after}/{n} answered at "
                 "1.1 x W after the block",
                 f"window in ({lo:.1f}, {hi:.1f}] s; configured {residual:g} s", n),
        inside == n and after == n,
        "bracket [0.9 W, 1.1 W] of the configured W (probe resolution)",
        "" if residual == RESIDUAL_FULL else f"quick mode: W = {residual:g} s instead of 180 s",
    ))  # fmt: skip
    report.rows.append(
        count_row(
            "other destination ports during the residual (8443)",
            Published("work (the penalty is per destination port)", PAPER, "residual censorship"),
            answered("other-port"),
            n,
            "innocent Initials to port 8443 answered",
        )
    )
    dummy = count_row(
        f"a dummy datagram before the Initial ({BLOCKED_SNI}, source port > 443)",
        Published("evades: not blocked", PAPER, "circumvention"),
        answered("dummy"),
        len(by["dummy"]),
        "Initials answered",
    )
    report.rows.append(dummy)
    return report
