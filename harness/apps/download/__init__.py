"""The `download` bystander: a software update over HTTPS, verified by its SHA-256."""

from __future__ import annotations

from harness.apps.download.options import DownloadOptions
from harness.apps.plugin import AppPlugin

PLUGIN = AppPlugin(
    kind="workload",
    options=DownloadOptions,
    app="harness.apps.download.app:DownloadApp",
    summary="bystander: a software update over HTTPS",
    setup_ms=1000,
)
