"""The `dns` bystander: ordinary names resolved through the inside resolver."""

from __future__ import annotations

from harness.apps.dns.options import DnsOptions
from harness.apps.plugin import AppPlugin

PLUGIN = AppPlugin(
    kind="workload",
    options=DnsOptions,
    app="harness.apps.dns.app:DnsApp",
    summary="bystander: ordinary names through the resolver",
    setup_ms=500,
)
