"""Telling the harness's own faults from censorship.

A trial that failed is evidence about the censor only when the failure is what the app or
the tool saw through the network. Everything else is a harness fault: set-up or tear-down
failed, a server or agent crashed or never became ready, a tool failed for a reason the
censor did not cause. Faults are retried and never enter a success ratio.

How a tool that did not start is told apart (the hard case): the censor saw nothing of it.
Under a censor with no techniques nothing can have been censored; otherwise a counting rule
in the censor host's raw table (before any filter rule, so packets that a technique drops
are counted too) says whether the client sent a single packet into the censor while the
tool was starting. A tool that failed before any packet crossed the censor was not blocked.
"""

from __future__ import annotations

from harness.results import Fault, FaultPhase
from harness.topology.base import AddressInUse, Host
from harness.topology.process import ProcessFailed

COUNT_COMMENT = "gatecrash-client-count"

_KIND_BY_PHASE: dict[str, str] = {
    "topology": "topology-setup",
    "servers": "server-setup",
    "censor": "censor-setup",
    "tool": "tool-start",
    "app": "app-exception",
    "teardown": "teardown",
}


class InjectedFault(RuntimeError):
    """Raised by a test hook to make one phase of one trial fail like a real fault."""


def fault_from_exception(phase: FaultPhase, exc: BaseException) -> Fault:
    """The fault an exception in `phase` stands for (an exception is never censorship:
    what the network did to an app is reported by the app as an outcome)."""
    kind = _KIND_BY_PHASE[phase]
    if isinstance(exc, AddressInUse):
        kind = "address-block-taken"
    elif phase == "servers" and isinstance(exc, ProcessFailed):
        kind = "server-not-ready"
    elif isinstance(exc, InjectedFault):
        kind = f"injected-{phase}"
    return Fault(phase=phase, kind=kind, detail=_first_lines(f"{type(exc).__name__}: {exc}"))


LEFT_BEHIND = "left behind: "  # how a topology notes on its exception what it could not remove


def left_behind(exc: BaseException) -> list[str]:
    """The objects a failed set-up could not remove, from the exception's notes."""
    notes = getattr(exc, "__notes__", [])
    return [n.removeprefix(LEFT_BEHIND) for n in notes if n.startswith(LEFT_BEHIND)]


def agent_fault(error: str | None) -> Fault:
    """An app agent crashed or gave no result (the app reported outcome harness-fault)."""
    return Fault(phase="app", kind="agent-crashed", detail=_first_lines(error or "no detail"))


def _first_lines(text: str, lines: int = 6, chars: int = 600) -> str:
    return "\n".join(text.splitlines()[:lines])[:chars]


class ClientPacketCounter:
    """Counts the client's packets entering the censor host (a match-only raw rule)."""

    def __init__(self, censor: Host, client_addr: str) -> None:
        self.censor, self.client = censor, client_addr
        self._base = 0

    def install(self) -> None:
        rule = ["-s", self.client, "-m", "comment", "--comment", COUNT_COMMENT]
        self.censor.run(["iptables", "-w", "-t", "raw", "-I", "PREROUTING", "1", *rule])
        self._base = self.read()

    def read(self) -> int:
        out = self.censor.run(["iptables", "-w", "-t", "raw", "-L", "PREROUTING", "-n", "-v", "-x"])
        for line in out.stdout.splitlines():
            if COUNT_COMMENT in line:
                return int(line.split()[0])
        raise RuntimeError(f"the client packet counter is gone from {self.censor.name}")

    def since_install(self) -> int:
        return self.read() - self._base


def tool_failure_is_fault(has_techniques: bool, client_packets: int | None) -> bool:
    """A tool that failed to start is a harness fault when nothing could have censored it:
    the censor has no technique, or no packet of the client reached the censor."""
    return not has_techniques or client_packets == 0
