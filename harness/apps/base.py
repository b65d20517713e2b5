"""The app interface: servers outside, a trial that fills a TrialResult."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

from harness.programs import require
from harness.results import TrialResult
from harness.topology.process import ManagedProcess
from harness.trial import TrialContext


class App(ABC):
    name: ClassVar[str]
    kind: ClassVar[Literal["call", "message"]]
    binaries: ClassVar[dict[str, str]] = {}  # binary -> Debian package

    def check_installed(self) -> None:
        for binary, package in self.binaries.items():
            require(binary, package)

    @abstractmethod
    def start_servers(self, ctx: TrialContext) -> None:
        """Start the app's servers outside (before the censor and the tool start)."""

    @abstractmethod
    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        """Place the call / send the messages through ctx.endpoint; fill result."""


def result_of(proc: ManagedProcess, timeout: float, stop: bool = False) -> dict[str, Any]:
    """The agent's result event; {} when it never printed one (it is stopped then)."""
    try:
        return proc.wait_for_event("result", timeout)
    except Exception:
        proc.stop()
        events = [e for e in proc.json_events() if e.get("event") == "result"]
        if events:
            return events[-1]
        return {  # an agent that gives no result broke: a harness fault, not censorship
            "outcome": "harness-fault",
            "error": f"{proc.name} gave no result\n{proc.tail()}",
        }
    finally:
        if stop:
            proc.stop()
