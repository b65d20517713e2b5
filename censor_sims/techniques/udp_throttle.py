"""Throttle UDP other than DNS: "calls ring but never connect" while chat still works.

Kernel part: packets are put by iptables CLASSIFY into an HTB class per egress leg limits
them to `rate`, with a short queue so excess is dropped (policing, as throttlers do) rather
than delayed for seconds; optional random loss with `-m statistic`. DNS (port 53) is never
matched: resolvers keep working, as in the field.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from censor_sims.technique import (
    CensorContext,
    KernelPlan,
    TcClass,
    Technique,
    direction_legs,
    rate_bits,
)


class UdpThrottle(Technique):
    summary = "rate-limit (and optionally drop) UDP other than DNS"
    type: Literal["udp_throttle"] = "udp_throttle"
    rate: str | None = Field(
        default=None, description="aggregate rate per direction, tc units (e.g. 16kbit)"
    )
    loss: float = Field(default=0.0, ge=0.0, le=1.0, description="random packet loss, 0..1")
    ports: list[int] | None = Field(
        default=None, description="only these server ports (default: all UDP but 53)"
    )
    queue: int = Field(default=10, ge=1, le=10000, description="queue length in packets")

    @field_validator("rate")
    @classmethod
    def _rate(cls, rate: str | None) -> str | None:
        if rate is not None:
            rate_bits(rate)
        return rate

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        if self.rate is None and self.loss == 0:
            return
        base = ["-p", "udp", "!", "--dport", "53", "!", "--sport", "53"]
        sample = self.flow_sample(ctx, plan, ["-i", "inside", *base, *self._ports("dst")])
        for in_if, out_if, server_end in direction_legs(self.direction):
            match = ["-i", in_if, "-o", out_if, *base, *self._ports(server_end), *sample]
            if self.loss > 0:
                plan.add(
                    "filter",
                    "FORWARD",
                    [
                        *match,
                        "-m",
                        "statistic",
                        "--mode",
                        "random",
                        "--probability",
                        f"{self.loss:.6f}",
                        "-j",
                        "DROP",
                    ],
                    self.label,
                    f"random loss {self.loss:.1%} {in_if}->{out_if}",
                )
            if self.rate is not None:
                cls = TcClass(out_if, ctx.new_class_minor(), self.rate, self.queue, self.label)
                plan.tc_classes.append(cls)
                plan.add(
                    "mangle",
                    "FORWARD",
                    [*match, "-j", "CLASSIFY", "--set-class", cls.classid],
                    self.label,
                    f"shape to {self.rate} {in_if}->{out_if}",
                )

    def _ports(self, server_end: str) -> list[str]:
        if not self.ports:
            return []
        flag = "--dports" if server_end == "dst" else "--sports"
        return ["-m", "multiport", flag, ",".join(str(p) for p in self.ports)]
