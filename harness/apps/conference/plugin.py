"""The conference app's AppPlugin: what the registry and the scenario model read, kept
out of the package's __init__ so that the app's agents start without importing pydantic."""

from __future__ import annotations

from harness.apps.conference.options import ConferenceOptions
from harness.apps.plugin import AppPlugin

PLUGIN = AppPlugin(
    kind="workload",
    options=ConferenceOptions,
    app="harness.apps.conference.app:ConferenceApp",
    summary="bystander: a 3+ party WebRTC meeting relayed by TURN (udp, tcp or tls 443)",
    # Join ~1 s, then call_seconds of media, the others' hang-up and the stats: ~4 s over
    # 2 s of media here.
    setup_ms=3000,
    lasts_call_seconds=True,
)
