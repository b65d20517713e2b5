"""The censor of one trial: compiles a profile's techniques, installs them, keeps evidence."""

from __future__ import annotations

from censor_sims import kernel
from censor_sims.events import EventLog
from censor_sims.technique import CensorContext, KernelPlan, Technique
from harness.topology.base import Host


class Censor:
    def __init__(
        self, host: Host, techniques: list[Technique], addresses: dict[str, str], log: EventLog
    ) -> None:
        self.host, self.techniques, self.log = host, techniques, log
        self.ctx = CensorContext(addresses)
        self.plan = KernelPlan()

    def start(self) -> None:
        for technique in self.techniques:
            technique.compile(self.ctx, self.plan)
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
