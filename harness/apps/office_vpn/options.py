"""The `office-vpn` bystander's scenario block."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.apps.plugin import AppOptions

Protocol = Literal["wireguard", "openvpn-udp", "openvpn-tcp"]


class OfficeVpnOptions(AppOptions):
    """The `office-vpn` bystander (harness/apps/office_vpn): a VPN up, then intranet
    requests that only the tunnel reaches."""

    protocol: Protocol = Field(
        default="wireguard", description="the office VPN: wireguard, openvpn-udp, openvpn-tcp"
    )
    requests: int = Field(default=3, ge=1, le=100, description="intranet requests, in turn")
    size_kb: int = Field(default=64, ge=1, le=10240, description="size of each response")
    tunnel_timeout_s: float = Field(
        default=10.0, gt=0, le=120, description="VPN connect to handshake done"
    )
    timeout_s: float = Field(default=5.0, gt=0, le=600, description="per intranet request")
