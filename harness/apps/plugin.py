"""What an app declares about itself, in one place, without importing its code.

An app package exports one `AppPlugin` (its `PLUGIN`, or one per app where a package holds
several), and `harness/registry.py` names it with one line. From the plugin alone the
scenario model takes the app's option block (validated by the app's own model, with the
same FILE:LINE:COL errors as any field), scoring takes the app's kind, a resumed run takes
the fields it must compare, and `gatecrash` lists the app; the app's class (and its heavy
imports: aiortc, the RTP code) is loaded only when a trial runs it. The Debian packages an
app needs are its class's `binaries` (binary -> package), listed in
docker/node/debian-packages.txt, which `scripts/setup` and the node image both install.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from harness.apps.base import App

AppKind = Literal["call", "message", "workload"]


class AppOptions(BaseModel):
    """The base of every app's option block: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    def expected_ms(self) -> int:
        """What these options add to a trial's expected wall time beyond the app's setup
        (messages x interval, a download's size): the shard planner's cost model."""
        return 0


@dataclass(frozen=True)
class AppPlugin:
    """One app: its kind (call, message or workload: which metrics its trials carry and how
    its cells are judged), its option block's model, and where its class lives."""

    kind: AppKind
    options: type[BaseModel]
    app: str  # "module:Class", imported only to run the app
    summary: str = ""
    needs_routed_tool: bool = False  # no proxy setting: only tools that route its traffic
    # Expected wall time of its trials beyond the call itself and AppOptions.expected_ms:
    # servers, agents, handshakes (harness/scale/shard.py balances shards by it).
    setup_ms: int = 3000
    lasts_call_seconds: bool = False  # a workload with media for call_seconds (conference)

    def load(self) -> type[App]:
        module, _, attr = self.app.partition(":")
        return getattr(importlib.import_module(module), attr)


def options_field(app: str) -> str:
    """The scenario key of an app's option block: `signal-like` -> `signal_like`."""
    return app.replace("-", "_")
