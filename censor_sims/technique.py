"""The shape every censor technique shares, and the registry that finds them by type name.

A technique is `{type, name, direction, probability, ...parameters}` (toxiproxy's shape). Its
kernel part is a list of iptables rules and tc commands, compiled into a `KernelPlan` that
the censor host applies in one go; the userspace DPI engine hooks in later through the same
plan (NFQUEUE rules). Techniques hold no per-flow state: the kernel (conntrack) does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from harness.fields import Port, TechniqueLabel

Direction = Literal["both", "upstream", "downstream"]

# Interface names of the censor host: every backend names its legs like this.
INSIDE_IF = "inside"
OUTSIDE_IF = "outside"

_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|bps|kbps|mbps)$")
_RATE_FACTOR = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "bps": 8, "kbps": 8e3, "mbps": 8e6}
_RATE_UNITS = "write a number and a unit, one of bit, kbit, mbit, gbit, bps, kbps, mbps"
# tc cannot shape below one byte per second; above 10 Gbit/s no veth here carries the rate.
MIN_RATE_BITS, MAX_RATE_BITS = 8.0, 10e9
# iptables' multiport match takes at most 15 ports.
MULTIPORT_MAX = 15


def rate_bits(rate: str) -> float:
    """'16kbit' -> 16000.0 (tc's units: bit, kbit, mbit, gbit; bps etc. are bytes/s),
    within what tc can shape."""
    m = _RATE.match(rate)
    if not m:
        why = "is negative: a rate must be more than 0" if rate.startswith("-") else "is not a rate"
        raise ValueError(f"rate {rate!r} {why}; {_RATE_UNITS} (e.g. 16kbit)")
    bits = float(m.group(1)) * _RATE_FACTOR[m.group(2)]
    if bits < MIN_RATE_BITS:
        raise ValueError(f"rate {rate!r} is below the minimum 8bit (1 byte/s): a rate must be > 0")
    if bits > MAX_RATE_BITS:
        raise ValueError(f"rate {rate!r} is above the maximum 10gbit")
    return bits


def check_rate(rate: str) -> str:
    rate_bits(rate)
    return rate


Rate = Annotated[str, AfterValidator(check_rate)]
# Server ports an iptables multiport rule matches.
MultiPorts = Annotated[list[Port], Field(min_length=1, max_length=MULTIPORT_MAX)]


@dataclass
class Rule:
    """One iptables rule, tagged with the technique that owns it (for counters and logs)."""

    table: str
    chain: str
    spec: list[str]
    technique: str
    purpose: str


@dataclass
class TcClass:
    """An HTB class on a censor leg; packets reach it through an iptables CLASSIFY rule."""

    device: str
    minor: int
    rate: str
    queue_packets: int
    technique: str

    @property
    def classid(self) -> str:
        return f"1:{self.minor:x}"


@dataclass
class CensorContext:
    """What a technique needs to compile itself: addresses of roles, marks, flow bits."""

    addresses: dict[str, str]
    _next_minor: int = 0x10
    _next_bit: int = 0
    _next_verdict: int = 0x10

    def resolve_host(self, name: str) -> str:
        if name in self.addresses:
            return self.addresses[name]
        return name  # an address or CIDR, validated by the technique

    def new_class_minor(self) -> int:
        self._next_minor += 1
        return self._next_minor

    def new_verdict(self) -> int:
        """A connmark verdict code of the engine's own (beyond pass/drop), e.g. a throttle."""
        code = self._next_verdict
        self._next_verdict += 1
        return code

    def new_flow_bit(self) -> int:
        """A connmark bit (above the low byte used by tc marks) to remember a per-flow draw."""
        bit = 1 << (8 + self._next_bit)
        self._next_bit += 1
        return bit


@dataclass
class KernelPlan:
    rules: list[Rule] = field(default_factory=list)
    tc_classes: list[TcClass] = field(default_factory=list)
    engine: bool = False  # some technique decides in the userspace DPI engine

    def add(self, table: str, chain: str, spec: list[str], technique: str, purpose: str) -> None:
        self.rules.append(Rule(table, chain, spec, technique, purpose))


def direction_legs(direction: Direction) -> list[tuple[str, str, str]]:
    """(in-iface, out-iface, which end is the server) for each leg the direction covers.

    upstream = inside -> outside (client to server): the server is the destination.
    downstream = outside -> inside: the server is the source.
    """
    legs = []
    if direction in ("both", "upstream"):
        legs.append((INSIDE_IF, OUTSIDE_IF, "dst"))
    if direction in ("both", "downstream"):
        legs.append((OUTSIDE_IF, INSIDE_IF, "src"))
    return legs


class Technique(BaseModel):
    """Base of all techniques. Subclasses set `type` (a Literal) and `kind`."""

    model_config = ConfigDict(extra="forbid")

    registry: ClassVar[dict[str, type[Technique]]] = {}
    summary: ClassVar[str] = ""

    name: TechniqueLabel | None = Field(
        default=None, description="label used in events; default: type"
    )
    direction: Direction = Field(default="both", description="both, upstream or downstream")
    probability: float = Field(
        default=1.0, ge=0.0, le=1.0, description="share of matching flows the technique hits"
    )

    def __eq__(self, other: object) -> bool:
        """Same type and parameters. Run-time state (private attributes such as allocated
        class codes or round-robin counters) is not part of what a scenario asks for."""
        if not isinstance(other, Technique):
            return NotImplemented
        return type(self) is type(other) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]  (mutable model: not hashable, as BaseModel)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs) -> None:
        type_field = cls.model_fields.get("type")
        if type_field is not None and type_field.default:
            Technique.registry[type_field.default] = cls

    # Analyzers a userspace technique reads; a technique with any is decided by the engine.
    analyzers: ClassVar[tuple[str, ...]] = ()
    # Decided in the engine even without analyzers (reads raw payloads itself).
    needs_engine: ClassVar[bool] = False

    @model_validator(mode="after")
    def _direction_is_for_kernel_techniques(self) -> Technique:
        if self.userspace and self.direction != "both":
            raise ValueError(
                f"direction {self.direction!r}: {self.type} decides whole flows in the DPI "  # type: ignore[attr-defined]
                "engine, so only direction 'both' applies"
            )
        return self

    @property
    def label(self) -> str:
        return self.name or self.type  # type: ignore[attr-defined]

    @property
    def userspace(self) -> bool:
        return bool(self.analyzers) or self.needs_engine

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        """Kernel part. Userspace techniques only ask for the engine (and may add classes)."""
        if not self.userspace:
            raise TypeError(f"{type(self).__name__} has neither a kernel part nor analyzers")
        plan.engine = True

    def start(self, censor: Any) -> None:
        """Programs the technique runs on the censor host (a proxy, ...), started through
        `censor.supervisor` before any kernel rule sends traffic to them. Default: none."""

    def wants_more(self, flow: Any) -> bool:
        """Whether the technique still needs this flow's packets after the analyzers are done."""
        return False

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any) -> Any:
        """Userspace techniques: look at a flow's properties, return a Decision or None.
        Called for every queued packet of a flow until some technique decides."""
        return None

    def flow_sample(self, ctx: CensorContext, plan: KernelPlan, upstream: list[str]) -> list[str]:
        """Extra match restricting a rule to the sampled share of flows (per-flow draw).

        `upstream` matches the flow's first packet (client -> server); the draw it makes
        marks the whole connection, both directions.

        The draw happens once per connection (conntrack NEW) and is remembered in a
        connmark bit, so a flow is either hit for its whole life or never, as real
        probabilistic censors behave; probability 1 needs no draw.
        """
        if self.probability >= 1.0:
            return []
        bit = ctx.new_flow_bit()
        draw = [
            *upstream,
            "-m",
            "conntrack",
            "--ctstate",
            "NEW",
            "-m",
            "statistic",
            "--mode",
            "random",
            "--probability",
            f"{self.probability:.6f}",
            "-j",
            "CONNMARK",
            "--set-xmark",
            f"{bit:#x}/{bit:#x}",
        ]
        plan.add("mangle", "PREROUTING", draw, self.label, "per-flow draw")
        return ["-m", "connmark", "--mark", f"{bit:#x}/{bit:#x}"]


def technique_names() -> list[str]:
    import censor_sims.techniques  # noqa: F401  (registers the built-in techniques)

    return sorted(Technique.registry)
