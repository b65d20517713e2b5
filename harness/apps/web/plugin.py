"""The web app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

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
