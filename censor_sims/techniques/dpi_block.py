"""Block flows by what the DPI recognises them to be: the VoIP blocker's tool.

`protocols: [sip, rtp, stun, dtls]` stops SIP signalling and the media of SIP and WebRTC
calls, whatever ports they use, while leaving other traffic alone (IGF 2016 report on VoIP
blocking: signalling blocked, media degraded or dropped).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from censor_sims.analyzers.base import recognised
from censor_sims.techniques._verdict import BlockingTechnique

Protocol = Literal[
    "sip", "rtp", "stun", "dtls", "tls", "quic", "http", "xmpp", "ssh", "openvpn",
    "wireguard", "whatsapp", "mtproto", "fet",
]  # fmt: skip


class DpiBlock(BlockingTechnique):
    summary = "reset, drop or throttle flows the DPI recognises as given protocols"
    type: Literal["dpi_block"] = "dpi_block"
    protocols: list[Protocol] = Field(min_length=1, description="analyzer verdicts to block")

    @property
    def analyzers(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.protocols)

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        for protocol in self.protocols:
            if recognised(protocol, changed.get(protocol, {})):
                return self.verdict(f"flow recognised as {protocol}")
        return None
