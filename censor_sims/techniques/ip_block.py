"""Block server addresses: how app endpoints (Telegram's data centres, ...) get blackholed."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator

from censor_sims.technique import CensorContext, KernelPlan, Technique, direction_legs
from censor_sims.techniques.port_block import _verdict

ROLE_NAMES = ("voip", "chat", "proxy", "dns", "front")


class IpBlock(Technique):
    """Drop or reject all packets to/from hosts (role names or CIDRs)."""

    summary = "drop or reject traffic to/from server hosts (role names or CIDRs)"
    type: Literal["ip_block"] = "ip_block"
    hosts: list[str] = Field(
        min_length=1, description=f"role names ({', '.join(ROLE_NAMES)}) or IPv4 CIDRs"
    )
    proto: Literal["tcp", "udp", "any"] = Field(default="any", description="tcp, udp or any")
    action: Literal["drop", "reject"] = Field(default="drop", description="drop or reject")

    @field_validator("hosts")
    @classmethod
    def _known_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            if host in ROLE_NAMES:
                continue
            try:
                ipaddress.IPv4Network(host, strict=False)
            except ValueError:
                raise ValueError(
                    f"{host!r} is neither a host role ({', '.join(ROLE_NAMES)}) nor an IPv4 CIDR"
                ) from None
        return hosts

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        addrs = ",".join(ctx.resolve_host(h) for h in self.hosts)
        proto = [] if self.proto == "any" else ["-p", self.proto]
        sample = self.flow_sample(ctx, plan, ["-i", "inside", *proto, "-d", addrs])
        reject_proto = "tcp" if self.proto == "tcp" else "udp"
        for in_if, out_if, server_end in direction_legs(self.direction):
            flag = "-d" if server_end == "dst" else "-s"
            match = ["-i", in_if, "-o", out_if, *proto, flag, addrs, *sample]
            plan.add(
                "filter",
                "FORWARD",
                [*match, *_verdict(self.action, reject_proto)],
                self.label,
                f"{self.action} {addrs} {in_if}->{out_if}",
            )
