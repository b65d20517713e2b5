"""The office-vpn app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

from __future__ import annotations

from harness.apps.office_vpn.options import OfficeVpnOptions
from harness.apps.plugin import AppPlugin

PLUGIN = AppPlugin(
    kind="workload",
    options=OfficeVpnOptions,
    app="harness.apps.office_vpn.app:OfficeVpnApp",
    summary="bystander: an office VPN (WireGuard or OpenVPN) and an intranet request",
    setup_ms=2000,
    # A VPN client has no proxy setting: a proxy-only tool is refused, not silently bypassed.
    needs_routed_tool=True,
)
