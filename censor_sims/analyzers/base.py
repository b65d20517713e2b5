"""The analyzer contract: a factory per protocol, a state object per flow, properties out.

Shaped after OpenGFW's `analyzer/interface.go`. An analyzer only *sees*: it publishes
properties of a flow (`tls.sni`, `quic.sni`, `fet.yes`) and never decides anything; the
censor's rules read those properties and decide. Per-flow state lives on the `Stream` the
factory returns, never on the analyzer, so one analyzer serves every flow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

Props = dict[str, Any]
Update = tuple[Props | None, bool]

# Name -> analyzer class; filled by `Analyzer.__init_subclass__` when the modules of this
# package are imported (the package's __init__ imports them all).
ANALYZERS: dict[str, type[Analyzer]] = {}


@dataclass(frozen=True, slots=True)
class FlowInfo:
    """A flow's 5-tuple. `src` is the client: the side that sent the flow's first packet."""

    proto: Literal["tcp", "udp"]
    src_ip: str
    src_port: int
    dst_ip: str
    dst_port: int


class Stream:
    """Per-flow state of one analyzer.

    `feed(rev, data)` gets one TCP segment's payload (in order, as the engine saw it) or one
    UDP datagram; `rev` is False for client -> server. It returns (update, done): `update`
    is a dict of properties to merge into the analyzer's namespace (None: nothing new) and
    `done` says the stream needs no more data. A stream must not raise on any input; the
    engine guards the call anyway (see `flow.FlowAnalysis`).
    """

    __slots__ = ()

    def feed(self, rev: bool, data: bytes) -> Update:
        raise NotImplementedError

    def close(self) -> Props | None:
        """The flow ended or the analyzer's byte limit was reached: a last update, if any."""
        return None


class Analyzer:
    """A protocol analyzer: a name, a byte budget and stream factories.

    `limit` is the most bytes per direction the analyzer will ever look at; the engine stops
    feeding a stream past it (TCP payloads are cut at the limit, UDP datagrams are fed whole
    while the budget lasts), which keeps the per-packet hot path short.
    """

    name: ClassVar[str]
    limit: ClassVar[int]

    def __init_subclass__(cls, register: bool = True, **kwargs: Any) -> None:
        """Register by name; `class X(Analyzer, register=False)` keeps one out (tests)."""
        super().__init_subclass__(**kwargs)
        if register and "name" in cls.__dict__:
            ANALYZERS[cls.name] = cls

    @staticmethod
    def recognises(props: dict[str, Any]) -> bool:
        """Whether the properties this analyzer published say the flow is its protocol (the
        one question every blocking technique asks; default: the `yes` property)."""
        return bool(props.get("yes"))

    def new_tcp(self, info: FlowInfo) -> Stream | None:
        """A stream for a TCP flow, or None when the analyzer has nothing to say about TCP."""
        return None

    def new_udp(self, info: FlowInfo) -> Stream | None:
        """A stream for a UDP flow, or None when the analyzer has nothing to say about UDP."""
        return None

    def new_stream(self, info: FlowInfo) -> Stream | None:
        return self.new_tcp(info) if info.proto == "tcp" else self.new_udp(info)

    def __repr__(self) -> str:
        return f"<analyzer {self.name}>"


def get(name: str, **options: Any) -> Analyzer:
    """An analyzer by name, built with its options (e.g. `get("tls", reassemble=False)`)."""
    try:
        cls = ANALYZERS[name]
    except KeyError:
        choices = ", ".join(sorted(ANALYZERS))
        raise ValueError(f"no analyzer named {name!r}; choose one of: {choices}") from None
    return cls(**options)


def recognised(protocol: str, props: dict[str, Any]) -> bool:
    """Whether analyzer `protocol`'s properties say the flow is that protocol."""
    return ANALYZERS[protocol].recognises(props)


def names() -> list[str]:
    return sorted(ANALYZERS)
