"""The `xmpp` app's scenario block (the messenger profiles extend it)."""

from __future__ import annotations

from pydantic import Field

from harness.apps.plugin import AppOptions


class XmppOptions(AppOptions):
    messages: int = Field(default=10, ge=1, le=10000)
    interval_ms: int = Field(default=50, ge=0, le=60000)
    timeout_s: float = Field(default=10.0, gt=0, le=600)

    def expected_ms(self) -> int:
        return self.messages * self.interval_ms
