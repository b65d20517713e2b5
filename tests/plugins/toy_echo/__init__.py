"""`toy-echo`: a workload app in one package. UDP datagrams from the client to an echo
server outside; an item is a datagram whose echo came back."""

from __future__ import annotations

from harness.apps.plugin import AppPlugin
from tests.plugins.toy_echo.options import ToyEchoOptions

PLUGIN = AppPlugin(
    kind="workload",
    options=ToyEchoOptions,
    app="tests.plugins.toy_echo.app:ToyEchoApp",
    summary="toy: UDP datagrams echoed by a server outside",
)
