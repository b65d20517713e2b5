"""The `dns` bystander's scenario block."""

from __future__ import annotations

from pydantic import Field

from harness.apps.plugin import AppOptions


class DnsOptions(AppOptions):
    """The `dns` bystander (harness/apps/dns): every run-zone name through the resolver."""

    timeout_s: float = Field(default=2.0, gt=0, le=60, description="per query attempt")
    attempts: int = Field(default=2, ge=1, le=5, description="tries per name, as a stub does")
