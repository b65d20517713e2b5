"""The `web` bystander: an HTTPS site on a few hostnames, loaded by curl."""

from __future__ import annotations

from harness.apps.plugin import AppPlugin
from harness.apps.web.options import WebOptions

PLUGIN = AppPlugin(
    kind="workload",
    options=WebOptions,
    app="harness.apps.web.app:WebApp",
    summary="bystander: an HTTPS page and its resources",
    setup_ms=1000,
)
