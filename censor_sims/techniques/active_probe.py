"""Active probing of suspected proxies: the GFW's way of confirming a server before it blocks
it (Ensafi et al., "Examining How the Great Firewall Discovers Hidden Circumvention Servers",
IMC 2015; Alice et al., "How China Detects and Blocks Shadowsocks", IMC 2020).

A flow the DPI suspects (by default: its first payload looks fully encrypted) is let through;
`delay` seconds later the censor itself connects to the flow's server, from the censor host,
and sends probes: the flow's first data packet replayed as is, and random payloads of several
lengths (the IMC 2020 paper saw lengths clustered around 8, 12, 16, 22, 33, 41 and 50 bytes,
and 221; as recalled from the paper, not re-measured here). Each probe records how the server
reacted: data back, FIN, RST or silence until `timeout`, and how long it took.

The server "answers like a proxy" when (criteria, configurable):
  replay_data       it answers a replayed first packet with data: a proxy without replay
                    protection that accepted the replayed handshake (the IMC 2020 rule);
  length_threshold  it stays silent for short random probes but closes (FIN/RST) once a
                    probe is long enough: reading a fixed-size header and then giving up is
                    the fingerprint of probe-resistant proxies (Frolov et al., NDSS 2020).
Then its IP is blocked for `block` seconds in both directions, by the kernel: an xt_recent
list that the drop rule checks and the engine fills, expiring on its own. Every probe, the
verdict and the block are events in the trial's censor.jsonl.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr

from censor_sims.analyzers.base import recognised
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import CensorContext, KernelPlan, Technique
from censor_sims.techniques.dpi_block import Protocol

Criterion = Literal["replay_data", "length_threshold"]
GFW_RANDOM_LENGTHS = [8, 12, 16, 22, 33, 41, 50, 221]
XT_RECENT = "/proc/net/xt_recent"


@dataclass(frozen=True)
class ProbeResult:
    kind: str  # replay | random
    length: int
    outcome: str  # data | fin | rst | timeout | refused | unreachable
    received: int  # bytes the server sent back (first read)
    ms: float  # from connect to the outcome


def probe_once(server: tuple[str, int], kind: str, payload: bytes, timeout: float) -> ProbeResult:
    """Connect, send `payload`, and classify the server's first reaction."""
    start = time.monotonic()

    def result(outcome: str, received: int = 0) -> ProbeResult:
        ms = round((time.monotonic() - start) * 1000, 1)
        return ProbeResult(kind, len(payload), outcome, received, ms)

    try:
        sock = socket.create_connection(server, timeout=timeout)
    except ConnectionRefusedError:
        return result("refused")
    except OSError:
        return result("unreachable")
    with sock:
        try:
            sock.sendall(payload)
            got = sock.recv(65536)
        except TimeoutError:
            return result("timeout")
        except ConnectionResetError:
            return result("rst")
        except OSError:
            return result("unreachable")
        return result("data", len(got)) if got else result("fin")


def judge(results: list[ProbeResult], criteria: list[str]) -> str | None:
    """Why the server answers like a proxy, or None."""
    if "replay_data" in criteria:
        answered = [r for r in results if r.kind == "replay" and r.outcome == "data"]
        if answered:
            return f"answered a replayed first packet with {answered[0].received} bytes"
    if "length_threshold" in criteria:
        randoms = sorted((r for r in results if r.kind == "random"), key=lambda r: r.length)
        silent = [r for r in randoms if r.outcome == "timeout"]
        closed = [r for r in randoms if r.outcome in ("fin", "rst")]
        complete = silent and closed and len(silent) + len(closed) == len(randoms)
        if complete and (top := max(r.length for r in silent)) < min(r.length for r in closed):
            low = min(r.length for r in closed)
            return f"silent up to {top} random bytes, closes from {low}: a fixed read threshold"
    return None


def recent_list(label: str) -> str:
    """The xt_recent list name of a technique (letters, digits, - and _ only)."""
    return "gc-probe-" + re.sub(r"[^A-Za-z0-9_-]", "_", label)[:40]


class ActiveProbe(Technique):
    summary = "probe servers of suspected flows (replay, random); block IPs that act as proxies"
    type: Literal["active_probe"] = "active_probe"
    triggers: list[Protocol] = Field(
        default=["fet"], min_length=1, description="analyzer verdicts that make a flow suspect"
    )
    delay: float = Field(default=1.0, ge=0, le=600, description="seconds before probing")
    replays: int = Field(default=1, ge=0, le=10, description="replays of the first packet")
    random_lengths: list[Annotated[int, Field(ge=1, le=65536)]] = Field(
        default=GFW_RANDOM_LENGTHS, max_length=64, description="lengths of random probes, bytes"
    )
    timeout: float = Field(default=2.0, gt=0, le=60, description="seconds a probe waits")
    criteria: list[Criterion] = Field(
        default=["replay_data"], min_length=1, description="replay_data, length_threshold"
    )
    block: int = Field(default=300, ge=1, le=86400, description="seconds a proxy IP is blocked")
    reprobe: float = Field(
        default=60.0, ge=0, le=86400, description="seconds before the same server is probed again"
    )
    _last: dict[tuple[str, int], float] = PrivateAttr(default_factory=dict)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    @property
    def analyzers(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.triggers)

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        super().compile(ctx, plan)
        name = recent_list(self.label)
        for flag, what in (("--rdest", "to"), ("--rsource", "from")):
            spec = ["-m", "recent", "--name", name, "--rcheck", flag, "--seconds",
                    str(self.block), "-j", "DROP"]  # fmt: skip
            plan.add("filter", "FORWARD", spec, self.label,
                     f"drop packets {what} servers that probing confirmed as proxies")  # fmt: skip

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        if pkt.payload and pkt.src == flow.info.src_ip:
            flow.data.setdefault("first_payload", pkt.payload)
        if flow.info.proto != "tcp" or "first_payload" not in flow.data:
            return None
        for protocol in self.triggers:
            if recognised(protocol, changed.get(protocol, {})):
                server = (flow.info.dst_ip, flow.info.dst_port)
                if self._schedule(server, flow.data["first_payload"], flow.describe(), engine):
                    when = f"probing {server[0]}:{server[1]} in {self.delay:g} s"
                else:
                    when = f"{server[0]}:{server[1]} probed less than {self.reprobe:g} s ago"
                return Decision("pass", f"suspect: flow recognised as {protocol}; {when}")
        return None

    # --- the prober (runs in the engine process, on threads) ----------------------------
    def _schedule(self, server: tuple[str, int], first: bytes, flow: str, engine: Any) -> bool:
        with self._lock:
            now = time.monotonic()
            if now - self._last.get(server, -1e9) < self.reprobe:
                return False
            self._last[server] = now
        threading.Thread(target=self._probe_server, args=(server, first, flow, engine),
                         name="active-probe", daemon=True).start()  # fmt: skip
        return True

    def _probe_server(self, server: tuple[str, int], first: bytes, flow: str, engine: Any) -> None:
        time.sleep(self.delay)
        probes = [("replay", first)] * self.replays
        probes += [("random", os.urandom(n)) for n in self.random_lengths]
        with ThreadPoolExecutor(max(1, len(probes))) as pool:
            results = list(pool.map(lambda p: probe_once(server, *p, self.timeout), probes))
        target = f"{server[0]}:{server[1]}"
        for r in results:
            engine.emit(self.label, "probe", server=target, trigger=flow, probe=r.kind,
                        length=r.length, outcome=r.outcome, received=r.received,
                        ms=r.ms)  # fmt: skip
        reason = judge(results, self.criteria)
        engine.emit(self.label, "probe-verdict", server=target, trigger=flow,
                    proxy=reason is not None, reason=reason or "answers like no proxy",
                    criteria=self.criteria)  # fmt: skip
        if reason is not None:
            self._block(server[0], engine, reason)

    def _block(self, ip: str, engine: Any, reason: str) -> None:
        path = os.path.join(XT_RECENT, recent_list(self.label))
        try:
            with open(path, "w") as f:
                f.write(f"+{ip}\n")
        except OSError as exc:
            engine.emit(self.label, "block-failed", server=ip, error=str(exc))
            return
        engine.emit(self.label, "block", server=ip, seconds=self.block, rule=reason,
                    scope="all ports, both directions (xt_recent)")  # fmt: skip
