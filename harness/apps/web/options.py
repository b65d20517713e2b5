"""The `web` bystander's scenario block."""

from __future__ import annotations

from pydantic import Field

from harness.apps.plugin import AppOptions


class WebOptions(AppOptions):
    """The `web` bystander (harness/apps/web): a page and the resources it links."""

    resources: int = Field(default=8, ge=1, le=100, description="resources the page links")
    resource_kb: int = Field(default=64, ge=1, le=10240, description="size of each resource")
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="per transfer")
