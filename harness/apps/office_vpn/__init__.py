"""The `office-vpn` bystander: a remote-access VPN to an office gateway outside, and an
intranet request through it."""

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
