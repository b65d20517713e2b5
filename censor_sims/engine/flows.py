"""The engine's flow table and penalty box.

A flow is keyed by its 5-tuple with the client first (the side whose packet we saw first).
Penalties are kept on the 3-tuple (client IP, server IP, server port), the way the GFW's
residual censorship is measured to work; entries expire on their own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from censor_sims.analyzers.base import FlowInfo
from censor_sims.analyzers.flow import FlowAnalysis
from censor_sims.engine.packet import TCP, Packet

IDLE_S = 120.0


@dataclass
class FlowState:
    info: FlowInfo
    analysis: FlowAnalysis
    first_seen: float
    last_seen: float
    packets: int = 0
    decided: bool = False
    verdict: int | None = None  # what packets of a decided flow get (None: accept)
    draws: dict[str, bool] = field(default_factory=dict)  # technique -> hit (per-flow draw)
    data: dict[str, Any] = field(default_factory=dict)  # techniques' per-flow notes

    @property
    def three_tuple(self) -> tuple[str, str, int]:
        return (self.info.src_ip, self.info.dst_ip, self.info.dst_port)

    def describe(self) -> str:
        i = self.info
        return f"{i.proto} {i.src_ip}:{i.src_port} -> {i.dst_ip}:{i.dst_port}"


@dataclass
class Penalty:
    until: float
    seconds: float
    action: str
    technique: str
    restart: bool
    share: float = 1.0  # each later flow is blocked with this probability (GFW HTTP: 0.5-0.75)


class FlowTable:
    def __init__(self, analyzers: list[Any]) -> None:
        self.analyzers = analyzers
        self.flows: dict[tuple, FlowState] = {}
        self.penalties: dict[tuple[str, str, int], Penalty] = {}
        self._last_sweep = time.monotonic()

    def lookup(self, pkt: Packet) -> tuple[FlowState, bool, bool]:
        """(flow, rev, new): rev is True for server -> client packets."""
        now = time.monotonic()
        fwd = (pkt.proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        rev_key = (pkt.proto, pkt.dst, pkt.dport, pkt.src, pkt.sport)
        if (flow := self.flows.get(fwd)) is not None:
            rev, new = False, False
        elif (flow := self.flows.get(rev_key)) is not None:
            rev, new = True, False
        else:
            proto = "tcp" if pkt.proto == TCP else "udp"
            info = FlowInfo(proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
            flow = FlowState(info, FlowAnalysis(self.analyzers, info), now, now)
            self.flows[fwd] = flow
            rev, new = False, True
        flow.last_seen = now
        flow.packets += 1
        if now - self._last_sweep > 5:
            self._sweep(now)
        return flow, rev, new

    def penalize(self, flow: FlowState, seconds: float, action: str, technique: str,
                 restart: bool = False, share: float = 1.0) -> None:  # fmt: skip
        self.penalties[flow.three_tuple] = Penalty(
            time.monotonic() + seconds, seconds, action, technique, restart, share
        )

    def penalty(self, flow: FlowState) -> Penalty | None:
        entry = self.penalties.get(flow.three_tuple)
        if entry is None:
            return None
        if time.monotonic() >= entry.until:
            del self.penalties[flow.three_tuple]
            return None
        return entry

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        for key in [k for k, f in self.flows.items() if now - f.last_seen > IDLE_S]:
            del self.flows[key]
        for key in [k for k, p in self.penalties.items() if now >= p.until]:
            del self.penalties[key]
