"""Block TLS and QUIC by the server name in the ClientHello (GFW, TSPU, most national DPI).

QUIC: the Initial is decrypted (its keys derive from the DCID); with `quic_port_rule` only
flows whose source port exceeds the destination port are hit, and with
`quic_first_datagram` only Initials in the flow's first datagram, as measured of the GFW
(USENIX Security 2025, gfw-report/usenixsecurity25-quic-sni). RST cannot be sent on QUIC:
there the action is a drop.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from censor_sims.techniques._names import NameMatching
from censor_sims.techniques._verdict import BlockingTechnique


class SniFilter(NameMatching, BlockingTechnique):
    summary = "reset, drop or throttle TLS/QUIC flows by ClientHello SNI, optionally residual"
    type: Literal["sni_filter"] = "sni_filter"
    analyzers: ClassVar[tuple[str, ...]] = ("tls", "quic")
    reassemble: bool = Field(
        default=True, description="read a ClientHello split over several TCP segments"
    )
    quic: bool = Field(default=True, description="also match QUIC v1 Initials")
    quic_port_rule: bool = Field(
        default=False, description="QUIC only when source port > destination port (GFW)"
    )
    quic_first_datagram: bool = Field(
        default=False,
        description="QUIC only when the Initial is the flow's first client datagram (GFW: a "
        "dummy datagram ahead of it evades)",
    )

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        props = flow.analysis.props
        sni = props.get("tls", {}).get("sni")
        proto = "tls"
        if sni is None and self.quic:
            quic = props.get("quic", {})
            sni, proto = quic.get("sni"), "quic"
            if sni and self.quic_port_rule and not flow.info.src_port > flow.info.dst_port:
                return None
            if sni and self.quic_first_datagram and quic.get("initial_datagram") != 0:
                return None
        hit = self.matching(sni)
        if hit is None:
            return None
        decision = self.verdict(f"{proto} sni {sni!r} matches {hit!r} ({self.match})")
        if proto == "quic" and decision.action == "rst":
            return self.verdict_as("drop", decision)
        return decision

    @staticmethod
    def verdict_as(action: str, decision: Any) -> Any:
        from dataclasses import replace

        return replace(decision, action=action, residual_action="drop")
