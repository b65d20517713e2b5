"""The tool interface: a server side on `proxy`, a client side on `client`, ready only when
traffic crosses the tunnel end to end ("process up" is not "ready")."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal

from harness.programs import require
from harness.trial import Endpoint, TrialContext

UdpSupport = Literal["native", "udpgw", "none"]


class ToolFailed(RuntimeError):
    """The tool did not come up (the trial's outcome is then `tool-failure`)."""


class Tool(ABC):
    name: ClassVar[str]
    exposes: ClassVar[str] = "socks5"
    udp: ClassVar[UdpSupport] = "none"
    # binary -> Debian package providing it
    binaries: ClassVar[dict[str, str]] = {}

    def check_installed(self) -> None:
        for binary, package in self.binaries.items():
            require(binary, package)

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
