"""How a flow's verdict reaches the kernel: a code in the connmark's third byte.

The engine sets the packet mark and re-injects the packet (NF_REPEAT); the first FORWARD
rule saves the mark into the connection, and from then on the kernel enforces it for the
rest of the flow without queueing another packet (OpenGFW's architecture).
"""

from __future__ import annotations

from dataclasses import dataclass

MASK = 0x00FF0000
SHIFT = 16
PASS = 0x01
DROP = 0x02
# Codes from 0x10 are handed out per technique (throttle classes): CensorContext.new_verdict.


def mark(code: int) -> int:
    return (code << SHIFT) & MASK


def mark_spec(code: int) -> str:
    return f"{mark(code):#x}/{MASK:#x}"


@dataclass(frozen=True)
class Decision:
    """What a technique decided for a flow.

    action: pass | drop | rst | throttle | forge (forge: answer injected, original passes).
    residual_s > 0 puts the flow's 3-tuple (client, server, server port) in the penalty box:
    new flows to it get `residual_action` until the timer runs out.
    """

    action: str
    rule: str
    code: int | None = None  # verdict code for throttle
    residual_s: float = 0.0
    residual_action: str = "drop"
    residual_share: float = 1.0  # share of later flows on the 3-tuple the penalty blocks
    restart_timer: bool = False  # a violation during the penalty restarts it (Iran)
    repeat: int = 1  # RST pairs to inject
