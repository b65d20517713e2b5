"""Benchmark (not a test): every tool side by side in one run, no censor.

    .venv/bin/python benchmarks/tools.py [--megabytes 20] [--rtt-samples 30] [--tools a,b]

Per tool, in a fresh trial topology: tunnel setup time (Tool.start until traffic crosses
end to end), bulk TCP throughput (curl downloading N MB from an HTTP server on `voip`,
relative to `direct` measured in the same run) and added round-trip time (median of 64-byte
TCP request/response exchanges with an echo server on `voip`, minus direct's median).
socks5 tools are used through their SOCKS5 port, tun tools (and `<tool>+tun`) by routing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from harness import registry
from harness.pki import make_ca
from harness.tools.tun_mode import load_tool
from harness.topology.addressing import AddressPool
from harness.topology.dns import start_dns
from harness.topology.netns import NetnsTopology
from harness.topology.process import Supervisor
from harness.trial import Endpoint, TrialContext

HTTP_PORT, ECHO_PORT = 8080, 7007
EXTRA = ["shadowsocks+tun", "psiphon-like+tun"]


@dataclass
class Row:
    tool: str
    setup_ms: float | None = None
    mbit_s: float | None = None
    rtt_ms: float | None = None
    error: str = ""


async def _rtt(socks: str | None, host: str, port: int, samples: int) -> float:
    from harness.net.socks5 import ProxyAddress, open_connection

    if socks:
        reader, writer = await open_connection(ProxyAddress.parse(socks), host, port)
    else:
        reader, writer = await asyncio.open_connection(host, port)
    payload, times = b"x" * 64, []
    for _ in range(samples + 3):
        start = time.perf_counter()
        writer.write(payload)
        await writer.drain()
        await reader.readexactly(len(payload))
        times.append((time.perf_counter() - start) * 1000)
    writer.close()
    return statistics.median(times[3:])  # the first exchanges warm up the path


def rtt_agent(argv: list[str]) -> None:
    """Run inside the client host: print the median TCP request/response time in ms."""
    socks, host, port, samples = argv
    print(json.dumps({"rtt_ms": asyncio.run(_rtt(socks or None, host, int(port), int(samples)))}))


def measure(
    ctx: TrialContext, endpoint: Endpoint, megabytes: int, samples: int, repeats: int
) -> Row:
    client, voip = ctx.topology["client"], ctx.topology.addr("voip")
    proxy = ["--socks5", endpoint.socks] if endpoint.socks else ["--noproxy", "*"]
    rates = []
    for _ in range(repeats):
        curl = client.run(
            ["curl", "-sS", "-o", "/dev/null", "--max-time", "60",
             "-w", "%{size_download} %{time_total}", *proxy,
             f"http://{voip}:{HTTP_PORT}/bulk.bin"],
            timeout=70,
        )  # fmt: skip
        size, seconds = curl.stdout.split()
        if int(size) != megabytes * 1_000_000:
            raise RuntimeError(f"downloaded {size} bytes of {megabytes} MB")
        rates.append(int(size) * 8 / float(seconds) / 1e6)
    rtt = client.run(
        [sys.executable, __file__, "--rtt-agent", endpoint.socks or "", voip, str(ECHO_PORT),
         str(samples)],
    )  # fmt: skip
    row = Row(ctx.tool)
    row.mbit_s = statistics.median(rates)
    row.rtt_ms = json.loads(rtt.stdout.strip().splitlines()[-1])["rtt_ms"]
    return row


def start_servers(topo: NetnsTopology, supervisor: Supervisor, www: Path) -> None:
    """DNS (the tools' readiness probes ask it), an HTTP server and an echo server on voip."""
    start_dns(topo, supervisor)
    voip, py = topo.addr("voip"), sys.executable
    http_argv = [py, "-m", "http.server", "--bind", voip, "--directory", str(www), str(HTTP_PORT)]
    echo_argv = [py, "-m", "harness.net.echo", "serve", "--host", voip, "--port", str(ECHO_PORT)]
    http = supervisor.start(topo["voip"], "http", http_argv)
    echo = supervisor.start(topo["voip"], "echo", echo_argv)
    echo.wait_for_event("ready", 10)
    http.wait_until(lambda: topo["voip"].listening(HTTP_PORT), 10, "HTTP listening")


def bench_tool(name: str, slot: int, pool: AddressPool, tmp: Path, megabytes: int,
               samples: int, repeats: int) -> Row:  # fmt: skip
    tdir = tmp / name
    www = tdir / "www"
    www.mkdir(parents=True)
    with open(www / "bulk.bin", "wb") as f:
        f.truncate(megabytes * 1_000_000)
    addresses = pool.acquire()
    try:
        with NetnsTopology("bench", slot, addresses, tdir) as topo:
            supervisor = Supervisor(tdir / "logs")
            try:
                start_servers(topo, supervisor, www)
                ctx = TrialContext(None, "open", name, "bench", 0, topo, supervisor, tdir,
                                   make_ca(tdir / "pki"))  # type: ignore[arg-type]  # fmt: skip
                tool = load_tool(name)
                tool.check_installed()
                start = time.monotonic()
                endpoint = tool.start(ctx)
                setup_ms = (time.monotonic() - start) * 1000
                row = measure(ctx, endpoint, megabytes, samples, repeats)
                row.setup_ms = setup_ms
                return row
            finally:
                supervisor.stop_all()
    except Exception as exc:  # one broken tool must not hide the others' figures
        (tmp / f"{name}.error.txt").write_text(traceback.format_exc())
        return Row(name, error=f"{type(exc).__name__}: {str(exc).splitlines()[0][:100]}")
    finally:
        pool.release(addresses)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--rtt-agent":
        rtt_agent(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--rtt-samples", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3, help="downloads per tool (median)")
    parser.add_argument("--tools", help="comma-separated names (default: every registered tool)")
    args = parser.parse_args()
    names = args.tools.split(",") if args.tools else [*registry.TOOLS, *EXTRA]
    if "direct" in names:
        names.remove("direct")
    names.insert(0, "direct")  # the baseline every ratio is relative to
    pool = AddressPool()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [bench_tool(n, i, pool, Path(tmp), args.megabytes, args.rtt_samples, args.repeats)
                for i, n in enumerate(names)]  # fmt: skip
    base = rows[0]
    print(f"\ntools, one run, no censor: bulk TCP = median of {args.repeats} x {args.megabytes} MB "
          f"downloads, RTT = median of {args.rtt_samples} 64-byte TCP exchanges")  # fmt: skip
    print(f"{'tool':26s} {'setup ms':>9s} {'Mbit/s':>9s} {'x direct':>9s} {'RTT ms':>8s} "
          f"{'+RTT ms':>8s}")  # fmt: skip
    for row in rows:
        if row.error:
            print(f"{row.tool:26s} FAILED: {row.error}")
            continue
        ratio = row.mbit_s / base.mbit_s if base.mbit_s and row.mbit_s else float("nan")
        added = row.rtt_ms - base.rtt_ms if base.rtt_ms is not None and row.rtt_ms else 0.0
        print(f"{row.tool:26s} {row.setup_ms:9.0f} {row.mbit_s:9.0f} {ratio:9.2f} "
              f"{row.rtt_ms:8.3f} {added:+8.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
