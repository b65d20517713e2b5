"""The `webrtc` app: two aiortc peers, coturn as STUN/TURN, signalling over WebSocket/TLS."""

from __future__ import annotations

from harness.apps.plugin import AppPlugin
from harness.apps.webrtc.options import WebRtcOptions

PLUGIN = AppPlugin(
    kind="call",
    options=WebRtcOptions,
    app="harness.apps.webrtc.app:WebRtcApp",
    summary="WebRTC call (ICE, DTLS-SRTP, TURN fallback)",
    setup_ms=8000,
)
