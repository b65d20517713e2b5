"""The app interface: servers outside, a trial that fills a TrialResult."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from harness.programs import require
from harness.results import TrialResult
from harness.topology.base import Host
from harness.topology.process import ManagedProcess, ProcessFailed
from harness.trial import TrialContext

WARM = "harness.apps.warm"


class App(ABC):
    name: ClassVar[str]  # its kind, options and summary: its AppPlugin (harness/apps/plugin.py)
    binaries: ClassVar[dict[str, str]] = {}  # binary -> Debian package

    def check_installed(self) -> None:
        for binary, package in self.binaries.items():
            require(binary, package)

    def warm_up(self, ctx: TrialContext) -> None:  # noqa: B027 (optional: most apps have none)
        """Start what needs no server, censor or tool yet (agents that import while the
        trial sets up: WarmAgent), right after the topology is up."""

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


class WarmAgent:
    """One of our agents, started early (harness.apps.warm): its process and imports are
    done when `go` hands it its arguments."""

    def __init__(self, ctx: TrialContext, host: Host, name: str, module: str) -> None:
        self.name = name
        self.proc = ctx.supervisor.start(host, name, ctx.agent(WARM, module), keep_stdin=True)

    def go(self, *args: str) -> ManagedProcess:
        stdin = self.proc.popen.stdin
        assert stdin is not None  # started with keep_stdin
        try:
            stdin.write((json.dumps(list(args)) + "\n").encode())
            stdin.close()
        except BrokenPipeError:
            raise ProcessFailed(
                f"{self.name} exited before it was given its arguments\n{self.proc.tail()}"
            ) from None
        return self.proc
