"""Everything one trial's parts share: who runs where, where logs go, the run's CA."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.topology.base import Topology
from harness.topology.process import Supervisor

if TYPE_CHECKING:
    from harness.pki import CA
    from harness.scenario import Scenario


@dataclass
class Endpoint:
    """What a tool exposes inside the client host."""

    socks: str | None = None  # host:port of a SOCKS5 server in the client host
    udp: bool = False  # the SOCKS5 server relays UDP (UDP ASSOCIATE)

    def agent_args(self, udp: bool = True) -> list[str]:
        """Our agents' flags for going through the tool: `--socks HOST:PORT`, and
        `--socks-udp` when the tool relays UDP and the agent has UDP to send (`udp`)."""
        if not self.socks:
            return []
        return ["--socks", self.socks, *(["--socks-udp"] if udp and self.udp else [])]


@dataclass
class TrialContext:
    scenario: Scenario
    censor: str
    tool: str
    app: str
    trial: int
    topology: Topology
    supervisor: Supervisor
    dir: Path
    ca: CA
    endpoint: Endpoint = field(default_factory=Endpoint)
    python: str = sys.executable

    def agent(self, module: str, *args: str) -> list[str]:
        """argv of one of our Python agents (run inside a host by the supervisor)."""
        return [self.python, "-m", module, *args]
