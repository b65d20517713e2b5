"""The sip app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

from __future__ import annotations

from harness.apps.plugin import AppPlugin
from harness.apps.sip.options import SipOptions

PLUGIN = AppPlugin(
    kind="call",
    options=SipOptions,
    app="harness.apps.sip.app:SipApp",
    summary="SIP call through Kamailio, RTP measured both ways",
    setup_ms=4000,
)
