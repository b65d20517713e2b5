"""The topology interface: hosts with addresses, joined so that the censor is the only path
between inside and outside. Backends (netns, docker) implement it; scenarios never see them.
"""

from __future__ import annotations

import re
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.topology.addressing import ALL_ROLES, TrialAddresses

ZONE = "gatecrash.test"
# Hosts hand MTU-sized packets to the censor, as on a wire. On veth a TCP sender's TSO
# would pass 64 KB GSO packets, and HTB (every rate-based technique) sends one whenever
# its class has any tokens and charges it afterwards: a short transfer ran ~16 % above a
# bandwidth_throttle's rate. A real middlebox never sees such packets.
WIRE_GSO_MAX = 1500


# Every object of a trial attempt is named gc-RUN-SLOT-ROLE. `gatecrash clean` reads the run
# and slot back from the name, so a run id is letters and digits only; the longest name
# (gc- + 12 + 6 digits + "resolver", 32 characters) stays far below Docker's limits (63 for
# a name used as a DNS label) and /run/netns's (255), and no interface carries it.
RUN_ID = re.compile(r"[a-z0-9]{1,12}")
MAX_SLOT = 999_999


def check_names(run_id: str, slot: int) -> None:
    """Refuse a run id or slot that would make ambiguous or over-long object names."""
    if not RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id {run_id!r}: 1 to 12 lower-case letters and digits")
    if not 0 <= slot <= MAX_SLOT:
        raise ValueError(f"slot {slot}: must be 0 to {MAX_SLOT}")


def fqdn(role: str) -> str:
    """The run-zone name of a role's host, e.g. voip.gatecrash.test."""
    return f"{role}.{ZONE}"


class CommandFailed(RuntimeError):
    """A setup command failed; the message names the command and its stderr."""


class AddressInUse(RuntimeError):
    """A trial's address block is taken outside the trial (on the docker backend: another
    Docker network of the same daemon); says which and what to do."""


@dataclass
class Host:
    """One host of a trial. `wrap` turns an argv into one that runs inside the host."""

    name: str
    addr: str
    prefix: list[str] = field(default_factory=list)

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]

    def run(
        self, argv: Sequence[str], check: bool = True, input: str | None = None, timeout=30.0
    ) -> subprocess.CompletedProcess[str]:
        return run_checked(self.wrap(argv), check=check, input=input, timeout=timeout)

    def listening(self, port: int, proto: str = "tcp") -> bool:
        """Whether a socket in this host listens on `port` (readiness of a server)."""
        flag = "-Hlnt" if proto == "tcp" else "-Hlnu"
        out = self.run(["ss", flag, f"sport = :{port}"], check=False).stdout
        return bool(out.strip())


def run_checked(
    argv: Sequence[str], check: bool = True, input: str | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run a command (argument list, never a shell string) and raise with its stderr."""
    proc = subprocess.run(
        list(argv), input=input, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"command failed ({proc.returncode}): {' '.join(argv)}\n{proc.stderr.strip()}"
        )
    return proc


class Topology(ABC):
    """Hosts of one trial. Use as a context manager: down() always runs.

    down() never raises for an object it cannot remove (only for a bug): it lists each in
    `leftovers` ("network NAME: reason"), leaves it for `gatecrash clean`, and the next
    trial attempt, with a slot and so names of its own, never meets it."""

    backend: str = "abstract"

    def __init__(self, run_id: str, slot: int, addresses: TrialAddresses, workdir: Path) -> None:
        check_names(run_id, slot)
        self.run_id, self.slot, self.addresses, self.workdir = run_id, slot, addresses, workdir
        self.hosts: dict[str, Host] = {}
        self.leftovers: list[str] = []
        # Called once the hosts exist, before their network is configured where the backend
        # allows it: the runner starts the app's agents there, so that their interpreters
        # load while the links come up. Called at the end of up() otherwise.
        self.on_hosts: Callable[[Topology], None] | None = None
        self._hosts_announced = False

    @property
    def prefix(self) -> str:
        """What every object of this trial attempt is named after: gc-RUN-SLOT."""
        return f"gc-{self.run_id}-{self.slot}"

    @abstractmethod
    def up(self) -> None: ...

    @abstractmethod
    def down(self) -> None: ...

    def __getitem__(self, role: str) -> Host:
        return self.hosts[role]

    def addr(self, role: str) -> str:
        return self.addresses.addr(role)

    def names(self) -> dict[str, str]:
        """The run zone: name -> address of every host that has one side."""
        return {fqdn(r): self.addresses.addr(r) for r in ALL_ROLES if r != "censor"}

    def hosts_exist(self) -> None:
        """Run the on_hosts hook (once): a backend calls it as soon as its hosts exist."""
        if self.on_hosts is not None and not self._hosts_announced:
            self._hosts_announced = True
            self.on_hosts(self)

    def __enter__(self) -> Topology:
        try:
            self.up()
            self.hosts_exist()
        except BaseException as exc:
            self.down()  # what up() made goes; what cannot go is named on the error
            for leftover in self.leftovers:
                exc.add_note(f"left behind: {leftover}")
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()
