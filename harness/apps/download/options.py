"""The `download` bystander's scenario block."""

from __future__ import annotations

from pydantic import Field

from harness.apps.plugin import AppOptions

DOWNLOAD_MS_PER_MIB = 100  # a 20 MiB update took 1-2 s (direct, shadowsocks)


class DownloadOptions(AppOptions):
    """The `download` bystander (harness/apps/download): a software update over HTTPS."""

    size_mb: float = Field(default=20.0, gt=0, le=200, description="size of the update (MiB)")
    timeout_s: float = Field(default=60.0, gt=0, le=3600, description="the whole download")

    def expected_ms(self) -> int:
        return round(DOWNLOAD_MS_PER_MIB * self.size_mb)
