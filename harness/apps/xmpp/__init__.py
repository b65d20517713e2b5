"""The `xmpp` app: messages between two accounts of a Prosody server."""

from __future__ import annotations

from harness.apps.plugin import AppPlugin
from harness.apps.xmpp.options import XmppOptions

PLUGIN = AppPlugin(
    kind="message",
    options=XmppOptions,
    app="harness.apps.xmpp.app:XmppApp",
    summary="XMPP messages through Prosody",
)
