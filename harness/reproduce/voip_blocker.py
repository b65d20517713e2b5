"""VoIP blocking as deployed in the Gulf states and Morocco, reproduced on the shipped
`voip-blocker` profile with real SIP, RTP, STUN and DTLS datagrams and segments.

Source: Internet Governance Forum (IGF) 2016, workshop report on VoIP blocking (motives: per-minute
voice revenue, lawful access, protests); the forms seen in the field are signalling blocked,
UDP media dropped while signalling works ("calls ring but never connect"), throttling. The
rows are documented behaviour, not figures: SIP is blocked on any port and transport, call
media (RTP, STUN, DTLS-SRTP) is dropped on any UDP port, while messaging and the web work.
Controls show the blocking is by protocol, not port: random UDP on the media ports passes.
"""

from __future__ import annotations

import os
from pathlib import Path

from harness.reproduce.core import CaseReport, Published, count_row
from harness.reproduce.lab import Lab, profile_technique
from harness.reproduce.payloads import (
    client_hello,
    dtls_client_hello,
    http_get,
    rtp_packets,
    sip_options,
    stun_binding_request,
    xmpp_stream_open,
)

NAME = "voip-blocker"
TITLE = "VoIP blocking, Gulf / Morocco style (IGF 2016 workshop report)"
PAPER = "IGF 2016 workshop report on VoIP blocking"
SIP_PORTS = {"udp": [5060, 5080], "tcp": [5060, 443]}
MEDIA_PORTS = [10000, 40000, 3478]
STUN_PORTS = [3478, 19302]


def _media_blocked(result: dict) -> bool:
    """The analyzer needs a few packets to call a flow RTP: blocked = the later half lost."""
    echoed = result.get("echoed", [])
    return bool(echoed) and not any(echoed[len(echoed) // 2 :])


def run(quick: bool, workdir: Path) -> CaseReport:
    repeats = 1 if quick else 3
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"profile": "voip-blocker", "repeats": repeats})  # fmt: skip
    ports = sorted({*SIP_PORTS["udp"], *SIP_PORTS["tcp"], *MEDIA_PORTS, *STUN_PORTS, 80, 5222})
    with Lab(workdir) as lab:
        lab.echo("voip", ",".join(map(str, ports)))
        lab.echo("chat", "443,5222")
        lab.echo("front", "80,443")
        lab.censor(profile_technique("voip-blocker", "voip-signalling"),
                   profile_technique("voip-blocker", "voip-media"))  # fmt: skip

        def udp(role: str, port: int, payloads: list[bytes], tag: str) -> dict:
            hexed = [p.hex() for p in payloads]
            return {"id": tag, "proto": "udp", "host": lab.addr(role), "port": port,
                    "timeout": 1.0, "gap": 0.02, "payloads": hexed}  # fmt: skip

        def tcp(role: str, port: int, payload: bytes, tag: str) -> dict:
            return {"id": tag, "host": lab.addr(role), "port": port, "timeout": 1.5,
                    "payloads": [payload.hex()]}  # fmt: skip

        jobs = []
        for _ in range(repeats):
            jobs += [udp("voip", p, [sip_options("UDP", p)], "sip") for p in SIP_PORTS["udp"]]
            jobs += [tcp("voip", p, sip_options("TCP", p), "sip") for p in SIP_PORTS["tcp"]]
            jobs += [udp("voip", p, rtp_packets(16), "rtp") for p in MEDIA_PORTS]
            jobs += [udp("voip", p, [os.urandom(172) for _ in range(16)], "udp-control")
                     for p in MEDIA_PORTS]  # fmt: skip
            jobs += [udp("voip", p, [stun_binding_request()], "stun") for p in STUN_PORTS]
            jobs.append(udp("voip", 40000, [dtls_client_hello()], "dtls"))
            jobs += [tcp("chat", 5222, xmpp_stream_open(), "messaging"),
                     tcp("chat", 443, client_hello("chat.gatecrash.test"), "messaging"),
                     tcp("front", 80, http_get("front.gatecrash.test"), "web"),
                     tcp("front", 443, client_hello("front.gatecrash.test"), "web")]  # fmt: skip
        results = lab.conns(jobs)
    by: dict[str, list[dict]] = {}
    for job, res in zip(jobs, results, strict=True):
        by.setdefault(job["id"], []).append(res)

    def dropped(tag: str) -> int:
        return sum(r["outcome"] == "timeout" or r["outcome"] == "connect-timeout"
                   for r in by[tag])  # fmt: skip

    def passed(tag: str) -> int:
        return sum(r["outcome"] == "ok" for r in by[tag])

    forms = "forms of VoIP blocking"
    sip = by["sip"]
    report.rows += [
        count_row("SIP signalling (OPTIONS) on UDP 5060/5080, TCP 5060/443",
                  Published("blocked, whatever the port", PAPER, forms), dropped("sip"),
                  len(sip), "SIP requests got no answer"),
        count_row(f"RTP media on UDP {MEDIA_PORTS}",
                  Published("dropped (calls ring but never connect)", PAPER, forms),
                  sum(map(_media_blocked, by["rtp"])), len(by["rtp"]),
                  "RTP streams lost their later half (the DPI needs 3 packets to tell RTP)"),
        count_row(f"random UDP on the same ports {MEDIA_PORTS}",
                  Published("passes: blocking is by protocol, not port", PAPER, forms),
                  passed("udp-control"), len(by["udp-control"]), "streams fully echoed"),
        count_row(f"STUN Binding on UDP {STUN_PORTS}",
                  Published("dropped (call media set-up)", PAPER, forms), dropped("stun"),
                  len(by["stun"]), "STUN requests unanswered"),
        count_row("DTLS-SRTP ClientHello on UDP 40000",
                  Published("dropped (call media set-up)", PAPER, forms), dropped("dtls"),
                  len(by["dtls"]), "DTLS handshakes unanswered"),
        count_row("messaging: XMPP on TCP 5222, TLS to chat on 443",
                  Published("works", PAPER, forms), passed("messaging"),
                  len(by["messaging"]), "flows echoed"),
        count_row("the web: HTTP on 80, TLS on 443",
                  Published("works", PAPER, forms), passed("web"), len(by["web"]),
                  "flows echoed"),
    ]  # fmt: skip
    return report
