"""The tool interface: a server side on `proxy`, a client side on `client`, ready only when
traffic crosses the tunnel end to end ("process up" is not "ready")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from harness.programs import require
from harness.tools.options import NoOptions, ToolOptions
from harness.tools.own_build import check_runnable, replacements, version_of_build
from harness.trial import Endpoint, TrialContext

UdpSupport = Literal["native", "udpgw", "none"]


class ToolFailed(RuntimeError):
    """The tool did not come up (the trial's outcome is then `tool-failure`)."""


class Tool(ABC):
    name: ClassVar[str]
    exposes: ClassVar[str] = "socks5"
    udp: ClassVar[UdpSupport] = "none"
    protocols: ClassVar[list[str]] = []  # what a DPI box sees on the wire (tools list)
    # binary -> Debian package providing it
    binaries: ClassVar[dict[str, str]] = {}
    # The settings a scenario may give (`{name: TOOL, OPTION: VALUE}`), and the programs a
    # developer's own build (`binary:`) may replace: none for gatecrash's own Python tools.
    Options: ClassVar[type[ToolOptions]] = NoOptions
    programs: ClassVar[tuple[str, ...]] = ()
    main_program: ClassVar[str | None] = None  # what a single file replaces, if not the one

    def __init__(self, options: ToolOptions | None = None, binary: str | None = None) -> None:
        self.options = options if options is not None else self.Options()
        self.own_build: dict[str, str] = (
            replacements(self.name, self.programs, binary, self.main_program) if binary else {}
        )

    def program(self, name: str) -> str:
        """What to run for program `name`: the own build when one replaces it."""
        return self.own_build.get(name, name)

    def check_installed(self) -> None:
        check_runnable(getattr(self, "own_build", {}))
        for binary, package in self.binaries.items():
            if binary not in getattr(self, "own_build", {}):
                require(binary, package)

    def version_argv(self) -> list[str] | None:
        """How to ask the program its version (the own build's, when there is one)."""
        from harness.tools.versions import VERSION_COMMANDS

        argv = getattr(self, "version_command", None)
        if callable(argv):
            argv = argv()
        if argv is None:
            argv = next((VERSION_COMMANDS[b] for b in self.binaries if b in VERSION_COMMANDS),
                        None)  # fmt: skip
        if not argv:
            return None
        return [self.program(argv[0]), *argv[1:]]

    def version(self) -> str | None:
        """The version line of the program this tool runs; None for the control, and
        "built in (Python)" for gatecrash's own tools."""
        if self.exposes == "none" and not self.binaries:
            return None
        argv = self.version_argv()
        if argv is None:
            return "built in (Python)" if not self.binaries else None
        return version_of_build(tuple(argv))

    @abstractmethod
    def start(self, ctx: TrialContext) -> Endpoint:
        """Start both sides under ctx.supervisor (which stops them) and wait until ready."""

    def probe(self, ctx: TrialContext, socks: str, timeout: float) -> float:
        """End-to-end readiness: a DNS query over TCP through the tunnel to the `dns` host.
        Returns the time it took until the first success, in ms."""
        proc = ctx.supervisor.start(
            ctx.topology["client"],
            f"{self.name}-probe",
            ctx.agent(
                "harness.tools.probe",
                "--socks",
                socks,
                "--target",
                f"{ctx.topology.addr('dns')}:53",
                "--timeout",
                str(timeout),
            ),
        )
        proc.wait_exit(timeout + 5)
        events = proc.json_events()
        result = events[-1] if events else {}
        if not result.get("ok"):
            raise ToolFailed(
                f"{self.name}: no traffic through the tunnel within {timeout:.0f} s "
                f"({result.get('error', 'no result')})"
            )
        return float(result["ms"])
