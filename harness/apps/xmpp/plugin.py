"""The xmpp app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

from __future__ import annotations

from harness.apps.plugin import AppPlugin
from harness.apps.xmpp.options import XmppOptions

PLUGIN = AppPlugin(
    kind="message",
    options=XmppOptions,
    app="harness.apps.xmpp.app:XmppApp",
    summary="XMPP messages through Prosody",
)
