"""Throttle flows to a fixed rate each, in both directions: Russia's TSPU slowing Twitter
(IMC 2021, "Throttling Twitter": triggered by SNI, about 130-150 kbit/s both ways, enforced
by dropping what exceeds the rate).

The DPI engine decides which flows (SNI by name, or an analyzer verdict such as `quic` or
`rtp`); the kernel enforces the rate. Per flow, not per censor: there is no tc classifier
that hashes flows into classes here (no fw/u32), and SFQ under one class would share one
rate among flows (each gets rate/n). So `slots` verdict codes are handed out, each with its
own HTB class per leg; iptables CLASSIFY maps a flow's connmark code to its classes. The
engine gives the n-th throttled flow slot n mod `slots`: up to `slots` concurrent flows
get the full rate each, beyond that flows share a slot's rate (the event says which slot).
A short pfifo under each class drops what exceeds the rate (policing, as TSPU does) rather
than queueing it for seconds. HTB charges a packet after letting it out, so the topology
makes hosts send MTU-sized packets, as on a wire (harness.topology.base.WIRE_GSO_MAX; a
64 KB GSO packet let a short transfer run ~16 % ahead of the rate): TCP goodput measured
135-137 kbit/s at 140kbit (tests/e2e/test_censor_techniques_throttle.py).
"""

from __future__ import annotations

import itertools
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from censor_sims.analyzers.base import recognised
from censor_sims.engine import verdicts
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import (
    INSIDE_IF,
    OUTSIDE_IF,
    CensorContext,
    KernelPlan,
    Rate,
    TcClass,
    Technique,
)
from censor_sims.techniques._names import MatchMode, check_regexes, name_matches
from censor_sims.techniques.dpi_block import Protocol


def flow_slots(
    ctx: CensorContext, plan: KernelPlan, label: str, rate: str, queue: int, slots: int,
    legs: tuple[str, ...] = (INSIDE_IF, OUTSIDE_IF),
) -> int:  # fmt: skip
    """`slots` consecutive verdict codes, each with its own HTB class on every leg (so each
    flow given a code is shaped on its own); returns the first code."""
    first = None
    for slot in range(slots):
        code = ctx.new_verdict()
        if code > verdicts.MASK >> verdicts.SHIFT:
            raise ValueError(f"{label}: too many throttle slots (verdict codes run out)")
        first = code if first is None else first
        for leg in legs:
            cls = TcClass(leg, ctx.new_class_minor(), rate, queue, label)
            plan.tc_classes.append(cls)
            plan.add("mangle", "POSTROUTING",
                     ["-o", leg, "-m", "connmark", "--mark", verdicts.mark_spec(code),
                      "-j", "CLASSIFY", "--set-class", cls.classid],
                     label, f"slot {slot}: {rate} per flow leaving {leg}")  # fmt: skip
    assert first is not None
    return first


class BandwidthThrottle(Technique):
    summary = "per-flow rate limit both ways for flows matched by SNI or DPI class (TSPU)"
    type: Literal["bandwidth_throttle"] = "bandwidth_throttle"
    names: list[str] = Field(default=[], description="SNI names (TLS and QUIC) that trigger")
    match: MatchMode = Field(default="suffix", description="exact, suffix or regex (names)")
    protocols: list[Protocol] = Field(default=[], description="analyzer verdicts that trigger")
    rate: Rate = Field(default="140kbit", description="rate per flow and direction, tc units")
    queue: int = Field(default=10, ge=1, le=1000, description="packets queued per class")
    slots: int = Field(default=8, ge=1, le=64, description="flows throttled each on their own")
    reassemble: bool = Field(
        default=True, description="read a ClientHello split over several TCP segments"
    )
    _code: int | None = PrivateAttr(default=None)
    _next: Any = PrivateAttr(default_factory=itertools.count)

    @model_validator(mode="after")
    def _trigger(self) -> BandwidthThrottle:
        if not self.names and not self.protocols:
            raise ValueError("bandwidth_throttle needs names (SNI) or protocols, or both")
        check_regexes(self.names, self.match)
        return self

    @property
    def analyzers(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(dict.fromkeys([*(["tls", "quic"] if self.names else []), *self.protocols]))

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        super().compile(ctx, plan)
        self._code = flow_slots(ctx, plan, self.label, self.rate, self.queue, self.slots)

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        rule = self._rule(flow.analysis.props, changed)
        if rule is None or self._code is None:
            return None
        slot = next(self._next) % self.slots
        return Decision("throttle", f"{rule}: {self.rate} per flow (slot {slot})",
                        code=self._code + slot)  # fmt: skip

    def _rule(self, props: dict[str, Any], changed: dict[str, Any]) -> str | None:
        if self.names:
            for proto in ("tls", "quic"):
                sni = props.get(proto, {}).get("sni")
                hit = name_matches(sni, self.names, self.match)
                if hit is not None:
                    return f"{proto} sni {sni!r} matches {hit!r} ({self.match})"
        for protocol in self.protocols:
            if recognised(protocol, changed.get(protocol, {})):
                return f"flow recognised as {protocol}"
        return None
