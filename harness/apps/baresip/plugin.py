"""The baresip app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

from __future__ import annotations

from harness.apps.baresip.options import BaresipOptions
from harness.apps.plugin import AppPlugin

PLUGIN = AppPlugin(
    kind="call",
    options=BaresipOptions,
    app="harness.apps.baresip.app:BaresipApp",
    summary="the unmodified baresip UA calling through Kamailio",
    setup_ms=6000,
    needs_routed_tool=True,  # no proxy setting: a VPN or `<tool>+tun` only
)
