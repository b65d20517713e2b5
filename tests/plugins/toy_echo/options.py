"""The `toy_echo:` block of a scenario."""

from __future__ import annotations

from pydantic import Field

from harness.apps.plugin import AppOptions
from harness.fields import Port


class ToyEchoOptions(AppOptions):
    datagrams: int = Field(default=3, ge=1, le=100, description="datagrams sent")
    port: Port = 7777
    payload: str = Field(default="hello", min_length=1, max_length=200)
