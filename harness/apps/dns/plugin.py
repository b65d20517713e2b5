"""The dns app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

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
