"""Throttle UDP other than DNS: "calls ring but never connect" while chat still works.

Scope: `all` UDP but port 53, `ports` (server ports), or `voip` (flows the DPI engine
classifies as rtp, sip, stun or dtls, on any port). DNS is never matched: resolvers keep
working, as in the field.

Rate: `per: aggregate` puts every scoped packet of a leg into one HTB class (iptables
CLASSIFY) limited to `rate`, with a short queue so excess is dropped (policing) rather than
delayed for seconds. `per: flow` gives each flow its own classes (the engine hands out
`slots` verdict codes, see bandwidth_throttle). Loss: `-m statistic` random drops.

Delay and jitter: this kernel has no netem qdisc, so they are added in userspace: every
packet of a scoped flow (the whole flow, not only its first packets) goes through an
NFQUEUE of its own and the engine holds its verdict for `delay` +- `jitter` ms (uniform)
before accepting it. That costs throughput (each packet is a round trip through
userspace, a few thousand packets per second at most) and reorders packets when the
jitter exceeds their spacing, as netem does. Where the kernel has netem it would be the
cheaper way; start() detects and logs whether netem exists on the censor host.
"""

from __future__ import annotations

import itertools
import random
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator

from censor_sims.analyzers.base import recognised
from censor_sims.engine import verdicts
from censor_sims.engine.packet import UDP
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import (
    CensorContext,
    KernelPlan,
    MultiPorts,
    Rate,
    TcClass,
    Technique,
    direction_legs,
)
from censor_sims.techniques.bandwidth_throttle import flow_slots

VOIP = ("rtp", "sip", "stun", "dtls")


class UdpThrottle(Technique):
    summary = "rate-limit, drop, delay and jitter UDP (all but DNS, some ports, or VoIP)"
    type: Literal["udp_throttle"] = "udp_throttle"
    scope: Literal["all", "ports", "voip"] | None = Field(
        default=None,
        description="all (UDP but 53), ports, or voip (flows classified rtp/sip/stun/dtls); "
        "default: ports when ports are given, else all",
    )
    rate: Rate | None = Field(
        default=None, description="rate per direction, tc units (e.g. 16kbit)"
    )
    per: Literal["aggregate", "flow"] = Field(
        default="aggregate", description="rate shared by all scoped flows, or per flow"
    )
    slots: int = Field(default=8, ge=1, le=64, description="per flow: flows with own classes")
    loss: float = Field(default=0.0, ge=0.0, le=1.0, description="random packet loss, 0..1")
    ports: MultiPorts | None = Field(
        default=None, description="only these server ports (default: all UDP but 53)"
    )
    queue: int = Field(default=10, ge=1, le=10000, description="queue length in packets")
    delay: float = Field(default=0.0, ge=0, le=10000, description="added delay, ms (userspace)")
    jitter: float = Field(default=0.0, ge=0, le=10000, description="+- uniform jitter, ms")
    _code: int | None = PrivateAttr(default=None)
    _next: Any = PrivateAttr(default_factory=itertools.count)

    @model_validator(mode="after")
    def _direction_is_for_kernel_techniques(self) -> UdpThrottle:
        """Replaces the base check: only engine-classified scopes need direction both."""
        if self.scope is None:
            self.scope = "ports" if self.ports else "all"
        if self.scope == "ports" and not self.ports:
            raise ValueError("scope ports needs ports (e.g. ports: [3478, 5004])")
        if self.jitter > self.delay and self.delay > 0:
            raise ValueError(f"jitter {self.jitter} ms exceeds delay {self.delay} ms")
        if self.jitter > 0 and self.delay == 0:
            raise ValueError("jitter needs a delay (jitter is +- around the delay)")
        if self.classified and self.direction != "both":
            raise ValueError(
                f"direction {self.direction!r}: scope voip and per flow are decided per flow "
                "by the DPI engine, so only direction 'both' applies"
            )
        return self

    @property
    def classified(self) -> bool:
        """Flows are picked by the engine (a verdict code), not by an iptables match."""
        return self.scope == "voip" or (self.per == "flow" and self.rate is not None)

    @property
    def analyzers(self) -> tuple[str, ...]:  # type: ignore[override]
        return VOIP if self.scope == "voip" else ()

    @property
    def userspace(self) -> bool:
        return self.classified or self.delay > 0

    @property
    def delay_queue(self) -> int | None:
        """The NFQUEUE number whose packets the engine holds (None: no added delay)."""
        return self._code if self.delay > 0 else None

    def hold_seconds(self) -> float:
        return max(0.0, self.delay + random.uniform(-self.jitter, self.jitter)) / 1000

    # --- kernel part ------------------------------------------------------------------
    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        if self.rate is None and self.loss == 0 and not self.userspace:
            return
        if self.userspace:
            plan.engine = True
        if self.classified:
            self._compile_classified(ctx, plan)
        else:
            self._compile_matched(ctx, plan)

    def _compile_matched(self, ctx: CensorContext, plan: KernelPlan) -> None:
        # Two udp matches, not one: iptables-nft 1.8.9 merges `! --dport 53 ! --sport 53` into
        # one 4-byte compare of the port pair, which then spares only 53 -> 53 (an OR).
        base = ["-p", "udp", "-m", "udp", "!", "--dport", "53", "-m", "udp", "!", "--sport", "53"]
        sample = self.flow_sample(ctx, plan, ["-i", "inside", *base, *self._ports("dst")])
        if self.delay > 0:
            self._code = ctx.new_verdict()
        for in_if, out_if, server_end in direction_legs(self.direction):
            match = ["-i", in_if, "-o", out_if, *base, *self._ports(server_end), *sample]
            self._loss(plan, match, f"{in_if}->{out_if}")
            if self.rate is not None:
                cls = TcClass(out_if, ctx.new_class_minor(), self.rate, self.queue, self.label)
                plan.tc_classes.append(cls)
                plan.add("mangle", "FORWARD",
                         [*match, "-j", "CLASSIFY", "--set-class", cls.classid],
                         self.label, f"shape to {self.rate} {in_if}->{out_if}")  # fmt: skip
            self._delay(plan, match, f"{in_if}->{out_if}")

    def _compile_classified(self, ctx: CensorContext, plan: KernelPlan) -> None:
        if self.rate is not None:
            slots = self.slots if self.per == "flow" else 1
            self._code = flow_slots(ctx, plan, self.label, self.rate, self.queue, slots)
            codes = [self._code + i for i in range(slots)]
        else:
            self._code = ctx.new_verdict()
            codes = [self._code]
        for code in codes:
            match = ["-m", "connmark", "--mark", verdicts.mark_spec(code)]
            self._loss(plan, match, f"verdict {code:#x}")
            self._delay(plan, match, f"verdict {code:#x}")

    def _loss(self, plan: KernelPlan, match: list[str], where: str) -> None:
        if self.loss > 0:
            plan.add("filter", "FORWARD",
                     [*match, "-m", "statistic", "--mode", "random", "--probability",
                      f"{self.loss:.6f}", "-j", "DROP"],
                     self.label, f"random loss {self.loss:.1%} {where}")  # fmt: skip

    def _delay(self, plan: KernelPlan, match: list[str], where: str) -> None:
        """Last in mangle FORWARD: an accepted packet leaves the table (CLASSIFY rules of
        this table must come first); filter FORWARD then sees it as usual."""
        if self.delay_queue is not None:
            plan.add("mangle", "FORWARD",
                     [*match, "-j", "NFQUEUE", "--queue-num", str(self.delay_queue),
                      "--queue-bypass"],
                     self.label, f"hold {self.delay:g}+-{self.jitter:g} ms {where}")  # fmt: skip

    def _ports(self, server_end: str) -> list[str]:
        if self.scope != "ports" or not self.ports:
            return []
        flag = "--dports" if server_end == "dst" else "--sports"
        return ["-m", "multiport", flag, ",".join(str(p) for p in self.ports)]

    def start(self, censor: Any) -> None:
        if self.delay > 0:
            probe = censor.host.run(["tc", "qdisc", "add", "dev", "lo", "root", "netem",
                                     "delay", "1ms"], check=False)  # fmt: skip
            if probe.returncode == 0:
                censor.host.run(["tc", "qdisc", "del", "dev", "lo", "root"], check=False)
            censor.log.emit(self.label, "delay-method", layer="kernel",
                            netem=probe.returncode == 0, method="userspace NFQUEUE hold",
                            note="netem qdisc " + ("present" if probe.returncode == 0 else
                                                   "absent from this kernel"))  # fmt: skip

    # --- engine part ------------------------------------------------------------------
    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        if not self.classified or pkt.proto != UDP or 53 in (pkt.sport, pkt.dport):
            return None
        if self.scope == "voip":
            hit = next((p for p in VOIP if recognised(p, changed.get(p, {}))), None)
            if hit is None:
                return None
            rule = f"udp flow recognised as {hit}"
        elif self.scope == "ports" and flow.info.dst_port not in (self.ports or []):
            return None
        else:
            rule = f"udp flow in scope {self.scope}"
        assert self._code is not None
        code = self._code
        if self.per == "flow" and self.rate is not None:
            code += next(self._next) % self.slots
        return Decision("throttle", f"{rule}: {self._effects()}", code=code)

    def _effects(self) -> str:
        parts = []
        if self.rate:
            parts.append(f"{self.rate} {self.per}")
        if self.loss:
            parts.append(f"loss {self.loss:.1%}")
        if self.delay:
            parts.append(f"delay {self.delay:g}+-{self.jitter:g} ms")
        return ", ".join(parts) or "marked"
