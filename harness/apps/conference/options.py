"""Options of the `conference` app (scenario key `conference`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.apps.plugin import AppOptions

TurnTransport = Literal["udp", "tcp", "tls"]


class ConferenceOptions(AppOptions):
    """The `conference` bystander (harness/apps/conference): a meeting of `participants`
    peers inside, every one relayed through coturn outside, as managed business clients are
    (relay-only ICE: the TURN server is the one address a firewall has to allow)."""

    participants: int = Field(default=3, ge=3, le=8, description="peers in the meeting (mesh)")
    turn_transport: TurnTransport = Field(
        default="udp",
        description="how each peer reaches coturn: udp (3478), tcp (3478) or tls (TCP 443)",
    )
    codec: Literal["opus", "pcmu"] = "opus"
    join_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="start -> every peer connection DTLS done"
    )
    max_loss_pct: float = Field(
        default=20.0,
        ge=0,
        le=100,
        description="a stream that lost more than this counts as media not received",
    )
