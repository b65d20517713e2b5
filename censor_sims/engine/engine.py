"""The userspace DPI engine: runs in the censor host on an NFQUEUE.

Only a flow's first packets are queued (iptables connbytes); each goes through the flow
table, the analyzers the profile's techniques reference, and the techniques in profile
order. The first decision wins and is written into the connection mark, after which the
kernel enforces it. The engine never dies on a packet: whatever goes wrong is logged and
the profile's fail policy (open: accept, closed: drop) is applied to that packet.
"""

from __future__ import annotations

import heapq
import importlib
import itertools
import json
import random
import select
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import censor_sims.techniques  # noqa: F401  (registers the techniques)
from censor_sims.analyzers.base import get as get_analyzer
from censor_sims.engine import verdicts
from censor_sims.engine.flows import FlowState, FlowTable
from censor_sims.engine.packet import TCP, Packet, RawSender, parse, rst_pair
from censor_sims.engine.verdicts import Decision
from censor_sims.events import EventLog
from censor_sims.technique import Technique


def load_techniques(entries: list[dict[str, Any]]) -> list[Technique]:
    """Techniques as the censor host compiled them: spec plus the verdict code it got. A
    technique from a plug-in package (not a built-in) is found by its module's name."""
    out = []
    for entry in entries:
        if entry["spec"]["type"] not in Technique.registry and entry.get("module"):
            importlib.import_module(entry["module"])
        technique = Technique.registry[entry["spec"]["type"]].model_validate(entry["spec"])
        if entry.get("code") is not None:
            technique._code = entry["code"]  # type: ignore[attr-defined]
        out.append(technique)
    return out


def analyzers_for(techniques: list[Technique]) -> list[Any]:
    """One instance per analyzer any technique references (OpenGFW: run only what rules
    read). The TLS analyzer reassembles unless a technique asks it not to."""
    names = sorted({name for t in techniques for name in t.analyzers})
    reassemble = all(getattr(t, "reassemble", True) for t in techniques)
    return [get_analyzer(n, reassemble=reassemble) if n == "tls" else get_analyzer(n)
            for n in names]  # fmt: skip


class Engine:
    def __init__(
        self, techniques: list[Technique], log: EventLog, fail: str = "open", sender: Any = None
    ) -> None:
        self.techniques = [t for t in techniques if t.userspace]
        self.log, self.fail = log, fail
        self.table = FlowTable(analyzers_for(self.techniques))
        self.raw = sender if sender is not None else RawSender()
        self.stats = {"packets": 0, "decided": 0, "errors": 0, "malformed": 0}
        self.held: list[tuple[float, int, Any]] = []  # (due, n, packet): added delay
        self._held_n = itertools.count()

    # --- API for techniques -------------------------------------------------------------
    def send(self, raw: bytes) -> None:
        self.raw.send(raw)

    def emit(self, technique: str, action: str, flow: FlowState | None = None, **fields) -> None:
        if flow is not None:
            fields["flow"] = flow.describe()
        self.log.emit(technique, action, layer="engine", **fields)

    # --- packet path --------------------------------------------------------------------
    def on_packet(self, nfpkt: Any) -> None:
        self.stats["packets"] += 1
        try:
            verdict = self.handle(nfpkt.get_payload())
        except Exception as exc:  # a bug must not take the censor down
            self.stats["errors"] += 1
            self.emit("engine", "error", error=f"{type(exc).__name__}: {exc}", policy=self.fail)
            verdict = None if self.fail == "open" else verdicts.DROP
        if verdict is None:
            nfpkt.accept()
        else:
            nfpkt.set_mark(verdicts.mark(verdict))
            nfpkt.repeat()

    def handle(self, raw: bytes) -> int | None:
        """The verdict code for the packet's flow, or None to accept it undecided."""
        pkt = parse(raw)
        if pkt is None:
            self.stats["malformed"] += 1
            return None if self.fail == "open" else verdicts.DROP
        flow, rev, new = self.table.lookup(pkt)
        penalty = self.table.penalty(flow) if new else None
        if penalty is not None and random.random() < penalty.share:
            if penalty.restart:  # each violation restarts the timer (Iran 2020)
                self.table.penalize(flow, penalty.seconds, penalty.action, penalty.technique,
                                    restart=True, share=penalty.share)  # fmt: skip
            self.emit(penalty.technique, f"residual-{penalty.action}", flow)
            flow.decided = True
            flow.verdict = self._enforce(penalty.action, pkt)
            return flow.verdict
        if penalty is not None:
            self.emit(penalty.technique, "residual-spared", flow, share=penalty.share)
        if flow.decided:
            # Packets queued before the kernel learnt the verdict: same verdict, no new event.
            return flow.verdict
        changed = flow.analysis.feed(rev, pkt.payload) if pkt.payload else {}
        for technique in self.techniques:
            if not self._drawn(technique, flow):
                continue
            decision = technique.decide(flow, pkt, changed, self)
            if decision is not None:
                return self._apply(technique, decision, flow, pkt)
        if flow.analysis.done and not any(t.wants_more(flow) for t in self.techniques):
            return verdicts.PASS  # nothing left to see: stop queueing this flow
        return None

    # --- held verdicts: delay added in userspace (no netem in this kernel) ----------------
    def delayer(self, technique: Any) -> Callable[[Any], None]:
        """Callback of a technique's delay queue: hold each packet for a fresh draw."""
        seen: set[tuple] = set()
        key = f"held:{technique.label}"

        def on_packet(nfpkt: Any) -> None:
            try:
                seconds = technique.hold_seconds()
                pkt = parse(nfpkt.get_payload())
                flow = pkt and (pkt.proto, *sorted([(pkt.src, pkt.sport), (pkt.dst, pkt.dport)]))
                if flow and flow not in seen:
                    seen.add(flow)
                    where = f"udp {pkt.src}:{pkt.sport} -> {pkt.dst}:{pkt.dport}"
                    self.log.emit(
                        technique.label,
                        "delay",
                        layer="engine",
                        flow=where,
                        delay_ms=technique.delay,
                        jitter_ms=technique.jitter,
                    )
            except Exception as exc:  # never lose the packet over a bug
                self.emit("engine", "error", error=f"{type(exc).__name__}: {exc}")
                seconds = 0.0
            self.stats[key] = self.stats.get(key, 0) + 1
            self.stats[key + ":ms"] = round(self.stats.get(key + ":ms", 0) + seconds * 1000, 1)
            heapq.heappush(self.held, (time.monotonic() + seconds, next(self._held_n), nfpkt))

        return on_packet

    def release_due(self) -> float | None:
        """Accept held packets whose time has come; seconds until the next (None: none)."""
        now = time.monotonic()
        while self.held and self.held[0][0] <= now:
            heapq.heappop(self.held)[2].accept()
        return max(0.0, self.held[0][0] - now) if self.held else None

    def _drawn(self, technique: Technique, flow: FlowState) -> bool:
        hit = flow.draws.get(technique.label)
        if hit is None:
            hit = flow.draws[technique.label] = random.random() < technique.probability
        return hit

    def _apply(self, technique: Technique, d: Decision, flow: FlowState, pkt: Packet) -> int | None:
        self.stats["decided"] += 1
        self.emit(technique.label, d.action, flow, rule=d.rule,
                  analyzer={k: v for k, v in flow.analysis.props.items()})  # fmt: skip
        if d.action == "forge":
            # An answer to one message, not a verdict on the flow: a resolver reuses its
            # source port for later queries (dnsmasq 2.90 does), and an on-path injector
            # answers each of them.
            return None
        flow.decided = True
        if d.residual_s > 0:
            self.table.penalize(flow, d.residual_s, d.residual_action, technique.label,
                                d.restart_timer, d.residual_share)  # fmt: skip
        if d.action == "throttle":
            flow.verdict = d.code
        else:
            flow.verdict = self._enforce(d.action, pkt, d.repeat)
        return flow.verdict

    def _enforce(self, action: str, pkt: Packet, repeat: int = 1) -> int:
        if action == "rst" and pkt.proto == TCP:
            for _ in range(repeat):
                for raw in rst_pair(pkt):
                    self.send(raw)
        if action == "pass":
            return verdicts.PASS
        return verdicts.DROP


def main() -> None:
    from netfilterqueue import NetfilterQueue

    config = json.loads(Path(sys.argv[1]).read_text())
    log = EventLog(Path(config["events"]))
    engine = Engine(load_techniques(config["techniques"]), log, config.get("fail", "open"))

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    nfq = NetfilterQueue()
    nfq.bind(config["queue"], engine.on_packet, max_len=4096)
    queues = {nfq.get_fd(): nfq}
    for technique in engine.techniques:  # whole flows held for an added delay
        if (num := getattr(technique, "delay_queue", None)) is not None:
            delay_q = NetfilterQueue()
            delay_q.bind(num, engine.delayer(technique), max_len=4096)
            queues[delay_q.get_fd()] = delay_q
    engine.emit(
        "engine",
        "start",
        queue=config["queue"],
        fail=engine.fail,
        analyzers=[a.name for a in engine.table.analyzers],
        note="queue-bypass: if the engine stops, queued flows pass (fail open)",
    )
    print(json.dumps({"event": "ready"}), flush=True)
    try:
        while True:  # one thread: held verdicts are released between reads
            ready, _, _ = select.select(list(queues), [], [], engine.release_due())
            for fd in ready:
                queues[fd].run(block=False)
    finally:
        engine.emit("engine", "stop", **engine.stats)
        for queue in queues.values():
            queue.unbind()


if __name__ == "__main__":
    main()
