"""Block a transport port: the oldest VoIP blocking there is (SIP 5060, IAX 4569, ...)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from censor_sims.technique import (
    CensorContext,
    KernelPlan,
    MultiPorts,
    Technique,
    direction_legs,
)


class PortBlock(Technique):
    """Drop or reject packets to/from the given server ports."""

    summary = "drop or reject traffic to/from server ports (e.g. SIP 5060)"
    type: Literal["port_block"] = "port_block"
    proto: Literal["tcp", "udp", "both"] = Field(default="both", description="tcp, udp or both")
    ports: MultiPorts = Field(description="server ports to block (1-65535, at most 15)")
    action: Literal["drop", "reject"] = Field(
        default="drop", description="drop silently, or reject (TCP RST / ICMP port unreachable)"
    )
    invert: bool = Field(
        default=False,
        description="block every server port EXCEPT `ports` (e.g. udp, [53], invert: all UDP "
        "but DNS, as networks that allow only TCP do)",
    )

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        protos = ["tcp", "udp"] if self.proto == "both" else [self.proto]
        port_list = ",".join(str(p) for p in self.ports)
        for proto in protos:
            # One inverted multiport match: iptables-nft 1.8.9 merges two inverted port
            # matches (`! --sport 53 ! --dport 53`) into one compare of the pair, an OR.
            ports = ["-m", "multiport", *(["!"] if self.invert else [])]
            sample = self.flow_sample(
                ctx, plan, ["-i", "inside", "-p", proto, *ports, "--dports", port_list]
            )
            for in_if, out_if, server_end in direction_legs(self.direction):
                flag = "--dports" if server_end == "dst" else "--sports"
                match = ["-i", in_if, "-o", out_if, "-p", proto, *ports, flag, port_list, *sample]
                plan.add(
                    "filter",
                    "FORWARD",
                    [*match, *_verdict(self.action, proto)],
                    self.label,
                    f"{self.action} {proto} port {'all but ' if self.invert else ''}"
                    f"{port_list} {in_if}->{out_if}",
                )


def _verdict(action: str, proto: str) -> list[str]:
    if action == "drop":
        return ["-j", "DROP"]
    if proto == "tcp":
        return ["-j", "REJECT", "--reject-with", "tcp-reset"]
    return ["-j", "REJECT", "--reject-with", "icmp-port-unreachable"]
