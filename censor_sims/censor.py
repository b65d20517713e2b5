"""The censor of one trial: compiles a profile's techniques, installs them, keeps evidence."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from censor_sims import kernel
from censor_sims.events import EventLog
from censor_sims.technique import CensorContext, KernelPlan, Technique
from harness.topology.base import Host
from harness.topology.process import Supervisor


class Censor:
    def __init__(
        self,
        host: Host,
        techniques: list[Technique],
        addresses: dict[str, str],
        log: EventLog,
        supervisor: Supervisor | None = None,
        workdir: Path | None = None,
        fail: str = "open",
    ) -> None:
        self.host, self.techniques, self.log = host, techniques, log
        self.supervisor, self.workdir, self.fail = supervisor, workdir, fail
        self.ctx = CensorContext(addresses)
        self.plan = KernelPlan()

    def start(self) -> None:
        for technique in self.techniques:
            technique.compile(self.ctx, self.plan)
        for technique in self.techniques:
            technique.start(self)
        if self.plan.engine:
            self._start_engine()
        kernel.apply(self.host, self.plan)
        for rule in self.plan.rules:
            self.log.emit(
                rule.technique,
                "install",
                layer="kernel",
                rule=f"{rule.table}/{rule.chain} {' '.join(rule.spec)}",
                purpose=rule.purpose,
            )
        for cls in self.plan.tc_classes:
            self.log.emit(
                cls.technique,
                "install",
                layer="kernel",
                rule=f"tc htb {cls.device} class {cls.classid} rate {cls.rate} "
                f"queue {cls.queue_packets}",
                purpose=f"shape classified packets leaving {cls.device}",
            )

    def stop(self) -> None:
        """Record what each rule did (packets and bytes it matched) before the host goes."""
        try:
            counters = kernel.read_counters(self.host, self.plan)
        except Exception as exc:  # evidence is best effort once teardown has begun
            self.log.emit("censor", "counters-unavailable", error=str(exc))
            return
        for c in counters:
            self.log.emit(
                c.rule.technique,
                "matched",
                layer="kernel",
                purpose=c.rule.purpose,
                packets=c.packets,
                bytes=c.bytes,
            )

    def _start_engine(self) -> None:
        """The DPI engine binds its queue before any rule sends packets to it."""
        if self.supervisor is None or self.workdir is None:
            raise RuntimeError("userspace techniques need the censor's supervisor and workdir")
        config = self.workdir / "engine.json"
        config.write_text(
            json.dumps(
                {
                    "queue": kernel.QUEUE_NUM,
                    "events": str(self.log.path.resolve()),
                    "fail": self.fail,
                    "techniques": [
                        {
                            "spec": t.model_dump(),
                            "code": getattr(t, "_code", None),
                            "module": type(t).__module__,
                        }
                        for t in self.techniques
                        if t.userspace
                    ],
                }
            )
        )
        engine = self.supervisor.start(
            self.host, "engine", [sys.executable, "-m", "censor_sims.engine", str(config)]
        )
        engine.wait_for_event("ready", 10)
