"""The `sip` app's scenario block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.apps.plugin import AppOptions


class SipOptions(AppOptions):
    transport: Literal["udp", "tcp"] = "udp"
    codec: Literal["g711-plc", "g711"] = "g711-plc"
    setup_timeout_s: float = Field(default=8.0, gt=0, le=120)
