"""DNS censorship, in its two documented forms.

`mode: inject` (GFW, FOCI 2020 gfw.report): the censor sees the query go by, sends `count`
forged replies spoofed from the queried server, and lets the query through: the real
answer still arrives, later, and the resolver has already taken the first. The forged
replies carry an injector's fingerprint (IP TTL, IP ID, DNS TTL, AA/RA flags), as the real
injectors do, so they can be told apart in a capture.

`mode: resolver` (ISPs in most censoring countries; jafar, CensorLab, netem): the inside
resolver itself lies. The run's dnsmasq on `resolver` is restarted with `--address=/name/`
(NXDOMAIN), `--address=/name/<sinkhole>` (an address the censor controls; default its
own inside address) or `--address=/name/<bogus>` (an unrelated address). dnsmasq matches a
name and its subdomains, so this mode takes `match: suffix` only. Each lie dnsmasq logs
becomes a censor event.
"""

from __future__ import annotations

import re
import threading
import time
from ipaddress import IPv4Address
from typing import Any, ClassVar, Literal

from dnslib import QTYPE, RR, A, DNSRecord
from pydantic import Field, PrivateAttr, model_validator

from censor_sims.engine.packet import UDP, build_udp
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import CensorContext, KernelPlan, Technique
from censor_sims.techniques._names import NameMatching

DEFAULT_BOGUS = "192.0.2.1"  # a documentation address (RFC 5737)
_QUERY = re.compile(r"query\[(\S+)\] (\S+) from (\S+)")
_LIE = re.compile(r"config (\S+) is (\S+)")
_DNS_NAME = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$")


class DnsPoison(NameMatching, Technique):
    summary = "forge DNS answers on path (inject) or make the inside resolver lie (resolver)"
    type: Literal["dns_poison"] = "dns_poison"
    analyzers: ClassVar[tuple[str, ...]] = ("dns",)
    mode: Literal["inject", "resolver"] = Field(
        default="inject", description="inject (on-path forgery) or resolver (lying resolver)"
    )
    lie: Literal["address", "nxdomain", "sinkhole"] = Field(
        default="address",
        description="resolver mode: address (answer, a bogus address), nxdomain, or sinkhole "
        "(answer, default the censor's inside address)",
    )
    answer: str | None = Field(
        default=None, description=f"forged A record (default {DEFAULT_BOGUS}; sinkhole: censor)"
    )
    ttl: int = Field(
        default=60, ge=0, le=2**31 - 1, description="inject: DNS TTL of the forged answer"
    )
    count: int = Field(default=1, ge=1, le=10, description="inject: forged replies per query")
    ip_ttl: int = Field(default=64, ge=1, le=255, description="inject: IP TTL of forged packets")
    ip_id: int = Field(
        default=0x4000,
        ge=0,
        le=0xFFFF,
        description="inject: IP ID of the first forged reply (+1 for each further one)",
    )
    aa: bool = Field(default=True, description="inject: AA flag of forged replies")
    ra: bool = Field(default=True, description="inject: RA flag of forged replies")
    _lies: list[str] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _mode_fits(self) -> DnsPoison:
        if self.answer is not None:
            try:
                IPv4Address(self.answer)
            except ValueError:
                raise ValueError(f"answer {self.answer!r} is not an IPv4 address") from None
        if self.mode == "resolver" and self.match != "suffix":
            raise ValueError(
                f"match {self.match!r}: mode resolver uses dnsmasq --address=/name/, which "
                "matches a name and its subdomains; use match suffix"
            )
        if self.mode == "resolver":
            for name in self.names:
                if not _DNS_NAME.match(name):
                    raise ValueError(
                        f"name {name!r} is not a DNS name (letters, digits, - and _ between "
                        "dots): mode resolver hands it to dnsmasq as --address=/name/"
                    )
        if self.mode == "inject" and self.lie != "address":
            raise ValueError(f"lie {self.lie!r} is for mode resolver; inject forges an address")
        return self

    @property
    def userspace(self) -> bool:
        return self.mode == "inject"

    @property
    def forged(self) -> str:
        return self.answer or DEFAULT_BOGUS

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        if self.mode == "inject":
            super().compile(ctx, plan)
            return
        answer = ""  # nxdomain
        if self.lie == "sinkhole":
            answer = self.answer or ctx.resolve_host("censor-inside")
        elif self.lie == "address":
            answer = self.forged
        self._lies = [f"--address=/{name.rstrip('.')}/{answer}" for name in self.names]

    # --- mode resolver ----------------------------------------------------------------
    def start(self, censor: Any) -> None:
        """The first resolver-mode technique configures the resolver for all of them (one
        restart), and one follower attributes each lie to the technique whose names match."""
        liars = [t for t in censor.techniques if isinstance(t, DnsPoison) and t.mode == "resolver"]
        if self.mode != "resolver" or liars[0] is not self:
            return
        from harness.topology.dns import relaunch_resolver

        if censor.supervisor is None:
            raise RuntimeError("dns_poison mode resolver needs the run's supervisor")
        proc = relaunch_resolver(censor.supervisor, [o for t in liars for o in t._lies])
        for t in liars:
            censor.log.emit(t.label, "install", layer="resolver", rule=" ".join(t._lies),
                            purpose=f"inside resolver answers {t.lie} for {t.names}")  # fmt: skip
        threading.Thread(target=_follow, args=(proc, censor.log, liars), daemon=True).start()

    # --- mode inject ------------------------------------------------------------------
    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        dns = changed.get("dns", {})
        if pkt.proto != UDP or dns.get("is_response", True):
            return None
        hit = self.matching(dns.get("qname"))
        if hit is None or dns.get("qtype") != "A":
            return None
        query = DNSRecord.parse(pkt.payload)
        reply = query.reply(ra=int(self.ra), aa=int(self.aa))
        reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A(self.forged), ttl=self.ttl))
        payload = reply.pack()
        for i in range(self.count):
            engine.send(build_udp(pkt.dst, pkt.src, pkt.dport, pkt.sport, payload,
                                  ttl=self.ip_ttl, ip_id=(self.ip_id + i) & 0xFFFF))  # fmt: skip
        return Decision("forge", f"qname {dns.get('qname')!r} matches {hit!r}: "
                        f"{self.count} forged A {self.forged}")  # fmt: skip


def _follow(proc: Any, log: Any, liars: list[DnsPoison]) -> None:
    """Turn the lying resolver's query log into censor events, while it runs."""
    client: dict[str, str] = {}
    with open(proc.stderr_path, errors="replace") as f:
        while True:
            line = f.readline()
            if not line:
                if not proc.running():
                    return
                time.sleep(0.05)
                continue
            if m := _QUERY.search(line):
                client[m.group(2)] = m.group(3)
            elif m := _LIE.search(line):
                name, answer = m.group(1), m.group(2)
                liar = next((t for t in liars if t.matching(name)), liars[0])
                log.emit(liar.label, "nxdomain" if answer == "NXDOMAIN" else "lie",
                         layer="resolver", rule=f"qname {name!r} matches {liar.matching(name)!r}",
                         qname=name, answer=answer, client=client.get(name))  # fmt: skip
