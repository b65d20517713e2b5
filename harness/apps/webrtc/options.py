"""The `webrtc` app's scenario block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.apps.plugin import AppOptions


class WebRtcOptions(AppOptions):
    """The `webrtc` app (harness/apps/webrtc): ICE policy, codec and signalling name."""

    ice_policy: Literal["all", "udp-only", "relay", "relay-tcp", "relay-tls"] = Field(
        default="all",
        description="all: UDP, then TURN/TLS 443, then TURN/TCP 3478; udp-only: no TCP "
        "fallback; relay*: TURN only, over UDP, TCP 3478 or TLS 443",
    )
    codec: Literal["opus", "pcmu"] = "opus"
    # not voip: coturn's TLS listener has port 443 there
    signalling_host: Literal["chat", "front"] = "chat"
    server_name: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$",
        description="SNI and certificate name of the signalling (default: the host's run-zone "
        "name); the client still connects to the signalling host's address",
    )
    attempt_timeout_s: float = Field(
        default=4.0, gt=0, le=60, description="per ICE attempt, offer -> DTLS done"
    )
    setup_timeout_s: float = Field(default=8.0, gt=0, le=120, description="signalling connect")
