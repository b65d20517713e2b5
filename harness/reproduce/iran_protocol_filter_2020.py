"""Iran's 2020 protocol filter, reproduced on the shipped `iran-2020` profile.

Bock, Fax, Reese, Singh, Levin: "Detecting and Evading Censorship-in-Depth: A Case Study of
Iran's Protocol Filter", FOCI 2020. Published behaviour checked here:
  - the filter runs on TCP ports 53, 80 and 443 only;
  - on those ports the first 2 client data packets must each match a DNS, HTTP or TLS
    fingerprint (HTTP: >= 8 bytes starting GET/POST/HEAD/CONNECT/OPTIONS/DELETE/PUT), per
    packet, without reassembly; later packets are not checked;
  - a flow that fails is dropped and its (client, server, port) stays blocked 60 s, the
    timer restarting on each new violation.

The residual window is the profile's 60 s in full mode; quick mode configures 3 s and says
so. The window is measured by probing one violated 3-tuple at 0.9 W (must be blocked) and
another at 1.1 W (must be open): the bracket is the resolution, hence the +-10 % tolerance.
Probing a blocked 3-tuple is itself a violation that restarts its timer, so each probe gets
its own 3-tuple (five servers x three ports).

This case found that the shipped technique dropped every TCP port outside 53/80/443, which
the paper does not say (the filter acts on those three ports only); `protocol_whitelist`
now leaves other ports alone (`other_ports: pass`, the profile's setting).
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.reproduce.core import CaseReport, Measured, Published, Row, count_row
from harness.reproduce.lab import Lab, blocked, profile_technique
from harness.reproduce.payloads import client_hello, dns_query_tcp, http_get

NAME = "iran-protocol-filter-2020"
TITLE = "Iran's protocol filter (Bock et al., FOCI 2020)"
PAPER = "Bock et al., FOCI 2020"
WINDOW_FULL, WINDOW_QUICK = 60.0, 3.0

SSH = b"SSH-2.0-OpenSSH_8.2p1\r\n"


def _tls_record() -> bytes:
    body = os.urandom(64)
    return b"\x17\x03\x03" + len(body).to_bytes(2, "big") + body


def run(quick: bool, workdir: Path) -> CaseReport:
    window = WINDOW_QUICK if quick else WINDOW_FULL
    other_ports = [22, 8080] if quick else [22, 25, 1194, 5222, 8080]
    repeats = 1 if quick else 3
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"profile": "iran-2020", "residual_s": window,
                         "residual_note": "quick mode shortens the paper's 60 s" if quick
                         else "the paper's 60 s"})  # fmt: skip
    with Lab(workdir) as lab:
        lab.echo("voip", ",".join(map(str, [53, 80, 443, *other_ports])))
        for role in ("chat", "proxy", "dns", "front"):
            lab.echo(role, "53,80,443")
        lab.censor(profile_technique("iran-2020", "iran-whitelist", residual=window))
        a = lab.addr

        def job(role: str, port: int, *payloads: bytes, at: float = 0.0, tag: str = "") -> dict:
            return {"id": tag, "host": a(role), "port": port, "at": at, "timeout": 1.5,
                    "payloads": [p.hex() for p in payloads]}  # fmt: skip

        hello = client_hello("example.test")
        jobs = [job("voip", p, SSH, os.urandom(32), tag="other-port") for p in other_ports]
        for _ in range(repeats):
            jobs += [job("voip", 53, dns_query_tcp(), dns_query_tcp("b.test"), tag="allowed"),
                     job("voip", 80, http_get(), http_get(path="/2"), tag="allowed"),
                     job("voip", 443, hello, _tls_record(), tag="allowed")]  # fmt: skip
        jobs += [job("chat", 53, os.urandom(40), tag="mismatch"),
                 job("chat", 80, SSH, tag="mismatch"),
                 job("chat", 443, os.urandom(300), tag="mismatch"),
                 job("proxy", 80, http_get(), SSH, tag="second-bad"),
                 job("proxy", 443, hello, _tls_record(), SSH, tag="third-bad"),
                 # the window: violate two 3-tuples at 0, probe one at 0.9 W, one at 1.1 W
                 job("dns", 80, SSH, tag="violate-early"),
                 job("front", 80, SSH, tag="violate-late"),
                 job("dns", 80, http_get(), at=0.9 * window, tag="probe-0.9"),
                 job("front", 80, http_get(), at=1.1 * window, tag="probe-1.1"),
                 job("front", 443, hello, at=0.2 * window, tag="other-port-same-server"),
                 # restart: violate at 0 and again at 0.5 W; still blocked at 1.1 W
                 job("dns", 443, SSH, tag="violate-restart"),
                 job("dns", 443, SSH, at=0.5 * window, tag="violate-again"),
                 job("dns", 443, hello, at=1.1 * window, tag="probe-restart")]  # fmt: skip
        results = lab.conns(jobs)
    by = {}
    for r, j in zip(results, jobs, strict=True):
        by.setdefault(j["id"], []).append(r)

    def ok(tag: str) -> int:
        return sum(not blocked(r) for r in by[tag])

    other = by["other-port"]
    row = count_row("TCP ports the filter applies to",
                    Published("53, 80, 443 only; other ports not subject to the filter", PAPER,
                              "protocol filter: ports"),
                    ok("other-port"), len(other),
                    f"non-DNS/HTTP/TLS flows to ports {other_ports} passed")  # fmt: skip
    report.rows.append(row)
    report.rows.append(
        count_row(
            "DNS / HTTP / TLS on 53 / 80 / 443 pass",
            Published(
                "allowed (fingerprints DNS, HTTP, TLS)", PAPER, "protocol filter: fingerprints"
            ),
            ok("allowed"),
            len(by["allowed"]),
            "flows passed (2 data packets each, echoed)",
        )
    )
    report.rows.append(
        count_row(
            "other protocols on 53 / 80 / 443 dropped",
            Published("dropped", PAPER, "protocol filter: fingerprints"),
            len(by["mismatch"]) - ok("mismatch"),
            len(by["mismatch"]),
            "flows with a random / SSH first packet dropped",
        )
    )
    second_bad, third_bad = by["second-bad"][0], by["third-bad"][0]
    n_ok = int(blocked(second_bad)) + int(not blocked(third_bad))
    report.rows.append(Row(
        "client data packets checked",
        Published("the first 2", PAPER, "protocol filter: how many packets"),
        Measured(f"bad 2nd packet: {'dropped' if blocked(second_bad) else 'passed'}; bad 3rd "
                 f"packet: {'dropped' if blocked(third_bad) else 'passed'}", "", 2),
        n_ok == 2, "both: the 2nd packet is checked and the 3rd is not"))  # fmt: skip
    early, late = by["probe-0.9"][0], by["probe-1.1"][0]
    v_early, v_late = by["violate-early"][0], by["violate-late"][0]
    dt_early = early["started"] - v_early["started"]
    dt_late = late["started"] - v_late["started"]
    agrees = blocked(v_early) and blocked(v_late) and blocked(early) and not blocked(late)
    report.rows.append(
        Row(
            "residual window on (client, server, port)",
            Published("60 s", PAPER, "protocol filter: residual censorship"),
            Measured(
                f"blocked at {dt_early:.2f} s, open at {dt_late:.2f} s after a violation",
                f"window in ({dt_early:.2f}, {dt_late:.2f}] s; configured {window:g} s",
                2,
            ),
            agrees,
            "bracket [0.9 W, 1.1 W] of the configured W: one probe per 3-tuple, since a probe is "
            "itself a violation that restarts the timer",
            "" if not quick else f"quick mode: W = {window:g} s configured instead of 60 s",
        )
    )
    same_server = by["other-port-same-server"][0]
    report.rows.append(
        count_row(
            "residual scope: other ports of the blocked server",
            Published(
                "unaffected (the penalty is per client, server, port)",
                PAPER,
                "protocol filter: residual censorship",
            ),
            int(not blocked(same_server)),
            1,
            "TLS to port 443 of a server blocked on 80 passed",
        )
    )
    restart = by["probe-restart"][0]
    dt = restart["started"] - by["violate-restart"][0]["started"]
    report.rows.append(
        Row(
            "timer restarts on each violation",
            Published(
                "yes: a new violation restarts the 60 s",
                PAPER,
                "protocol filter: residual censorship",
            ),
            Measured(
                f"violated at 0 and {0.5 * window:g} s: still blocked at {dt:.2f} s "
                f"({'blocked' if blocked(restart) else 'open'}), while a 3-tuple violated once "
                f"was open at {dt_late:.2f} s",
                "",
                1,
            ),
            blocked(restart) and not blocked(late),
            "both observations as stated",
        )
    )
    return report
