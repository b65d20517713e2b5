"""No tool: the control. The app talks straight across the censor."""

from __future__ import annotations

from harness.tools.base import Tool
from harness.trial import Endpoint, TrialContext


class Direct(Tool):
    name = "direct"
    exposes = "none"
    udp = "native"
    protocols = ["none (the control)"]

    def start(self, ctx: TrialContext) -> Endpoint:
        return Endpoint()
