"""The `sip` app: gatecrash's own SIP user agents (register, INVITE, RTP both ways) through
Kamailio, with the call's media scored by the E-model."""

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
