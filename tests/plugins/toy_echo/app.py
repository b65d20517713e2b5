"""The toy app's harness side: socat echoes on `voip`, the client sends with a short
Python loop in its own namespace (through the tool only when it routes the host)."""

from __future__ import annotations

import json
import sys

from harness.apps.base import App
from harness.results import TrialResult, WorkloadMetrics
from harness.trial import TrialContext

CLIENT = """
import json, socket, sys, time
addr, port, count, payload = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
done, start = 0, time.monotonic()
for i in range(count):
    s.sendto(f"{payload} {i}".encode(), (addr, port))
    try:
        done += s.recv(2048) == f"{payload} {i}".encode()
    except OSError:
        pass
print(json.dumps({"done": done, "ms": (time.monotonic() - start) * 1000}))
"""


class ToyEchoApp(App):
    name = "toy-echo"

    def start_servers(self, ctx: TrialContext) -> None:
        opts = ctx.scenario.options(self.name)
        voip = ctx.topology["voip"]
        argv = ["socat", f"UDP4-RECVFROM:{opts.port},bind={voip.addr},fork", "PIPE"]
        ctx.supervisor.start(voip, "toy-echo", argv)

    def run(self, ctx: TrialContext, result: TrialResult) -> None:
        opts = ctx.scenario.options(self.name)
        argv = [sys.executable, "-c", CLIENT, ctx.topology.addr("voip"), str(opts.port),
                str(opts.datagrams), opts.payload]  # fmt: skip
        out = json.loads(ctx.topology["client"].run(argv, timeout=opts.datagrams + 10).stdout)
        result.workload = WorkloadMetrics(
            items=opts.datagrams, completed=out["done"], duration_ms=round(out["ms"], 1)
        )
        result.outcome = "ok" if out["done"] == opts.datagrams else "timeout"
