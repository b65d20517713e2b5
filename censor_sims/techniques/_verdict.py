"""What blocking techniques share: the action, its throttle class, and residual penalties."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PrivateAttr, model_validator

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


class BlockingTechnique(Technique):
    """A userspace technique whose verdict is rst, drop or throttle, optionally residual."""

    action: Literal["rst", "drop", "throttle"] = Field(
        default="rst", description="rst (RSTs to both ends), drop, or throttle"
    )
    rst_count: int = Field(default=1, ge=1, le=10, description="RST pairs injected (rst)")
    rate: Rate | None = Field(default=None, description="throttle rate per leg, tc units")
    residual: float = Field(
        default=0.0, ge=0, le=3600, description="seconds the 3-tuple stays blocked afterwards"
    )
    # The connmark verdict code of this technique's throttle class (set by compile(); the
    # censor hands it to the engine process with the technique).
    _code: int | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _rate_for_throttle(self):
        if self.action == "throttle" and self.rate is None:
            raise ValueError("action throttle needs a rate (e.g. rate: 150kbit)")
        return self

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        super().compile(ctx, plan)
        if self.action != "throttle" or self.rate is None:
            return
        self._code = ctx.new_verdict()
        for leg in (INSIDE_IF, OUTSIDE_IF):
            cls = TcClass(leg, ctx.new_class_minor(), self.rate, 20, self.label)
            plan.tc_classes.append(cls)
            plan.add("mangle", "POSTROUTING",
                     ["-o", leg, "-m", "connmark", "--mark", verdicts.mark_spec(self._code),
                      "-j", "CLASSIFY", "--set-class", cls.classid],
                     self.label, f"throttled flows to {self.rate} leaving {leg}")  # fmt: skip

    def verdict(self, rule: str) -> Decision:
        return Decision(self.action, rule, code=self._code, residual_s=self.residual,
                        residual_action="rst" if self.action == "rst" else "drop",
                        repeat=self.rst_count)  # fmt: skip
