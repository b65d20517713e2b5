"""The webrtc app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

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
