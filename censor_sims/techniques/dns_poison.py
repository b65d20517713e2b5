"""On-path DNS injection: forged answers race the real one (GFW, FOCI 2020 gfw.report).

The censor sees the query go by, sends `count` forged replies spoofed from the queried
server, and lets the query through: the real answer still arrives, later, and the resolver
has already taken the first. The forged replies carry a fingerprint (IP TTL, IP ID, DNS TTL)
as the real injectors do, so they can be told apart in a capture.
"""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any, ClassVar, Literal

from dnslib import QTYPE, RR, A, DNSRecord
from pydantic import Field, field_validator

from censor_sims.engine.packet import UDP, build_udp
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import Technique
from censor_sims.techniques._names import NameMatching


class DnsPoison(NameMatching, Technique):
    summary = "inject forged DNS answers for matching names, racing the real one"
    type: Literal["dns_poison"] = "dns_poison"
    analyzers: ClassVar[tuple[str, ...]] = ("dns",)
    mode: Literal["inject"] = Field(default="inject", description="inject (on-path forgery)")
    answer: str = Field(
        default="192.0.2.1", description="forged A record (default: a documentation address)"
    )
    ttl: int = Field(default=60, ge=0, description="DNS TTL of the forged answer")
    count: int = Field(default=1, ge=1, le=10, description="forged replies per query")
    ip_ttl: int = Field(default=64, ge=1, le=255, description="IP TTL of forged packets")

    @field_validator("answer")
    @classmethod
    def _ipv4(cls, answer: str) -> str:
        IPv4Address(answer)
        return answer

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        dns = changed.get("dns", {})
        if pkt.proto != UDP or dns.get("is_response", True):
            return None
        hit = self.matching(dns.get("qname"))
        if hit is None or dns.get("qtype") != "A":
            return None
        query = DNSRecord.parse(pkt.payload)
        reply = query.reply()
        reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(self.answer), ttl=self.ttl))
        payload = reply.pack()
        for i in range(self.count):
            engine.send(build_udp(pkt.dst, pkt.src, pkt.dport, pkt.sport, payload,
                                  ttl=self.ip_ttl, ip_id=0x4000 + i))  # fmt: skip
        return Decision("forge", f"qname {dns.get('qname')!r} matches {hit!r}: "
                        f"{self.count} forged A {self.answer}")  # fmt: skip
