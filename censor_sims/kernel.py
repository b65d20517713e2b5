"""Apply a KernelPlan inside the censor host (iptables-restore, tc batch) and read counters.

Every rule carries a comment `gc<N>` so its packet/byte counters can be read back at the end
of a trial and attributed to the technique that installed it: the kernel's own evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from censor_sims.engine import verdicts
from censor_sims.technique import KernelPlan, Rule
from harness.topology.base import Host

_COUNTER = re.compile(r"^\[(\d+):(\d+)\] -A (\S+) .*--comment \"?gc(\d+)\"?")


@dataclass
class RuleCounter:
    rule: Rule
    packets: int
    bytes: int


def iptables_restore_text(plan: KernelPlan) -> str:
    tables: dict[str, list[str]] = {}
    for idx, rule in enumerate(plan.rules):
        line = ["-A", rule.chain, *rule.spec, "-m", "comment", "--comment", f"gc{idx}"]
        tables.setdefault(rule.table, []).append(" ".join(_quote(a) for a in line))
    out = []
    for table, lines in tables.items():
        out += [f"*{table}", *lines, "COMMIT"]
    return "\n".join(out) + "\n"


def _quote(arg: str) -> str:
    """iptables-restore understands double quotes only (shlex's single quotes break it)."""
    if arg and not any(c.isspace() or c == '"' for c in arg):
        return arg
    return '"' + arg.replace('"', '\\"') + '"'


def tc_batch_text(plan: KernelPlan) -> str:
    """HTB on each leg that shapes; iptables CLASSIFY picks the class (no tc filter needed:
    this kernel has no fw/u32 classifiers, and CLASSIFY works everywhere)."""
    lines: list[str] = []
    devices: set[str] = set()
    for cls in plan.tc_classes:
        if cls.device not in devices:
            devices.add(cls.device)
            # default 0: unclassified traffic bypasses the shaper at full speed.
            lines.append(f"qdisc add dev {cls.device} root handle 1: htb default 0 r2q 1")
        lines += [
            f"class add dev {cls.device} parent 1: classid {cls.classid} htb "
            f"rate {cls.rate} ceil {cls.rate}",
            f"qdisc add dev {cls.device} parent {cls.classid} handle {cls.minor:x}: "
            f"pfifo limit {cls.queue_packets}",
        ]
    return "\n".join(lines) + ("\n" if lines else "")


QUEUE_NUM = 0
QUEUE_PACKETS = 20  # first packets of a flow (both directions) that the engine sees


def engine_rules(plan: KernelPlan) -> list[Rule]:
    """The engine's kernel half: queue undecided flows' first packets, enforce verdicts.
    `--queue-bypass`: with no engine bound, queued packets pass (fail open)."""
    m = f"{verdicts.MASK:#x}"
    specs = [
        (["-m", "mark", "!", "--mark", f"0/{m}", "-j", "CONNMARK", "--save-mark",
          "--nfmask", m, "--ctmask", m], "remember the engine's verdict for the flow"),
        (["-m", "connmark", "--mark", verdicts.mark_spec(verdicts.DROP), "-j", "DROP"],
         "enforce drop verdicts"),
        (["-m", "connmark", "--mark", f"0/{m}", "-m", "connbytes", "--connbytes",
          f"0:{QUEUE_PACKETS}", "--connbytes-dir", "both", "--connbytes-mode", "packets",
          "-j", "NFQUEUE", "--queue-num", str(QUEUE_NUM), "--queue-bypass"],
         f"queue the first {QUEUE_PACKETS} packets of undecided flows"),
    ]  # fmt: skip
    return [Rule("filter", "FORWARD", spec, "engine", purpose) for spec, purpose in specs]


def apply(host: Host, plan: KernelPlan) -> tuple[str, str]:
    """Install the plan; returns the exact iptables and tc input used (for the log)."""
    if plan.engine and not any(r.technique == "engine" for r in plan.rules):
        # Verdict memory and enforcement first; the queue rule LAST: a packet the engine
        # accepts undecided leaves the chain, so every kernel rule (ip_block, port_block...)
        # must have seen it before it is queued.
        save, enforce, queue = engine_rules(plan)
        plan.rules[:0] = [save, enforce]
        plan.rules.append(queue)
        host.run(["sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1"], check=False)
    rules = iptables_restore_text(plan)
    tc = tc_batch_text(plan)
    if plan.rules:
        host.run(["iptables-restore", "--noflush", "-w"], input=rules)
    if tc:
        host.run(["tc", "-batch", "-"], input=tc)
    return rules, tc


def read_counters(host: Host, plan: KernelPlan) -> list[RuleCounter]:
    if not plan.rules:
        return []
    text = host.run(["iptables-save", "-c"], check=False).stdout
    counters = []
    for line in text.splitlines():
        m = _COUNTER.match(line)
        if m and int(m.group(4)) < len(plan.rules):
            rule = plan.rules[int(m.group(4))]
            counters.append(RuleCounter(rule, int(m.group(1)), int(m.group(2))))
    return counters
