"""The `baresip` app's scenario block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.apps.plugin import AppOptions


class BaresipOptions(AppOptions):
    """The real baresip client (harness/apps/baresip). Its PCMU has no PLC module loaded,
    hence `g711` (no PLC) for the E-model by default."""

    codec: Literal["g711", "g711-plc"] = "g711"
    setup_timeout_s: float = Field(default=8.0, gt=0, le=120)
