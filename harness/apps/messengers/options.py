"""The messenger profiles' scenario blocks: xmpp's message options plus their own wire
choices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.apps.xmpp.options import XmppOptions
from harness.fields import Port


class SignalLikeOptions(XmppOptions):
    port: Port = 443
    server_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$",
        description="SNI and certificate name (default chat.<run zone>); a name outside the "
        "run zone is only the SNI, the client then connects to chat's address",
    )


class WhatsAppLikeOptions(XmppOptions):
    port: Literal[443, 5222] = 443


class TelegramLikeOptions(XmppOptions):
    port: Literal[443, 80, 5222] = 443
    framing: Literal["intermediate", "abridged"] = "intermediate"
    dc: int = Field(default=2, ge=1, le=5, description="data-centre id in the preamble")
