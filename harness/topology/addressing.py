"""Address blocks for trials: each trial gets its own block so trials can run side by side.

A block is split in two halves: the inside network (client, resolver, the censor's inside
leg) and the outside network (servers and the censor's outside leg). Fixed host numbers per
role keep addresses predictable in logs and captures.
"""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass

INSIDE_ROLES = ("client", "resolver")
OUTSIDE_ROLES = ("voip", "chat", "proxy", "dns", "front")
ROUTER_ROLE = "censor"
ALL_ROLES = (*INSIDE_ROLES, ROUTER_ROLE, *OUTSIDE_ROLES)

# Host number inside each half of the block.
_HOST_NUMBER = {
    "censor": 1,
    "client": 10,
    "resolver": 53,
    "voip": 10,
    "chat": 11,
    "proxy": 12,
    "dns": 53,
    "front": 14,
}

DEFAULT_POOL = "10.77.0.0/16"


def dynamic_range(half: ipaddress.IPv4Network) -> ipaddress.IPv4Network:
    """The upper half of a network, where no role's fixed host number lies: the addresses a
    Docker network may hand to containers that are not the trial's (see the docker backend)."""
    return list(half.subnets(prefixlen_diff=1))[1]


BLOCK_PREFIX = 24


@dataclass(frozen=True)
class TrialAddresses:
    """The addresses of one trial's topology."""

    block: ipaddress.IPv4Network

    @property
    def inside(self) -> ipaddress.IPv4Network:
        return next(iter(self.block.subnets(prefixlen_diff=1)))

    @property
    def outside(self) -> ipaddress.IPv4Network:
        return list(self.block.subnets(prefixlen_diff=1))[1]

    def side(self, role: str) -> str:
        if role in INSIDE_ROLES:
            return "inside"
        if role in OUTSIDE_ROLES:
            return "outside"
        raise KeyError(f"{role!r} has no single side")

    def addr(self, role: str, side: str | None = None) -> str:
        """The address of a role; the censor has one per side (default: outside)."""
        net = self.inside if (side or self._default_side(role)) == "inside" else self.outside
        return str(net.network_address + _HOST_NUMBER[role])

    def gateway(self, role: str) -> str:
        return self.addr("censor", self.side(role))

    def prefixlen(self) -> int:
        return self.inside.prefixlen

    def _default_side(self, role: str) -> str:
        return "outside" if role == ROUTER_ROLE else self.side(role)

    def as_dict(self) -> dict[str, str]:
        out = {role: self.addr(role) for role in (*INSIDE_ROLES, *OUTSIDE_ROLES)}
        out["censor-inside"] = self.addr("censor", "inside")
        out["censor-outside"] = self.addr("censor", "outside")
        return out


class AddressPool:
    """Hands out /24 blocks of a pool; a block is reused only after it was released."""

    def __init__(self, pool: str = DEFAULT_POOL) -> None:
        self.network = ipaddress.IPv4Network(pool)
        if self.network.prefixlen > BLOCK_PREFIX:
            raise ValueError(f"address pool {pool} is smaller than one /{BLOCK_PREFIX} block")
        self._free = list(self.network.subnets(new_prefix=BLOCK_PREFIX))
        self._aside: set[ipaddress.IPv4Network] = set()
        self._lock = threading.Lock()

    def acquire(self) -> TrialAddresses:
        with self._lock:
            if not self._free:
                raise RuntimeError(f"address pool {self.network} exhausted")
            return TrialAddresses(self._free.pop(0))

    def release(self, addresses: TrialAddresses) -> None:
        with self._lock:
            if addresses.block not in self._aside:
                self._free.insert(0, addresses.block)

    def set_aside(self, addresses: TrialAddresses) -> None:
        """Never hand this block out again: something outside the run holds it."""
        with self._lock:
            self._aside.add(addresses.block)
