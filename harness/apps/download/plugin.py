"""The download app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

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
