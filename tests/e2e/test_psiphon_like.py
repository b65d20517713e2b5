"""The Psiphon-like tool across a trial topology: TCP through SOCKS5 CONNECT, UDP through UDP
ASSOCIATE over UDPGW, a plain OpenSSH client left without a banner (probe resistance), and a
SIP call whose RTP rides UDPGW over TCP past a UDP throttle."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness import registry
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.tools.psiphon_like.tool import PORT, PsiphonLike
from harness.topology.dns import start_dns
from harness.trial import TrialContext

pytestmark = pytest.mark.e2e

ECHO_PORT = 7007
TOOL_ENTRY = "harness.tools.psiphon_like.tool:PsiphonLike"  # the registry line to add
RTT_SCRIPT = """
import asyncio, json, statistics, time
from harness.net.socks5 import ProxyAddress, UdpAssociation

async def main(socks, host, port):
    got = asyncio.Queue()
    assoc = await UdpAssociation.open(ProxyAddress.parse(socks), lambda d, a: got.put_nowait(d))
    rtts = []
    for i in range(20):
        start = time.monotonic()
        assoc.sendto(b"rtt-%d" % i, (host, port))
        while (await asyncio.wait_for(got.get(), 3)) != b"rtt-%d" % i:
            pass
        rtts.append((time.monotonic() - start) * 1000)
    assoc.close()
    print(json.dumps({"median_ms": statistics.median(rtts), "max_ms": max(rtts)}))

import sys
asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""

REPLAY_SCRIPT = """
import json, os, socket, sys
from harness.tools.psiphon_like import obfuscator as ob

host, port, keyword = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()

def answer(data):
    with socket.create_connection((host, port), 3) as s:
        s.sendall(data)
        s.settimeout(2)
        try:
            return len(s.recv(65536))
        except TimeoutError:
            return 0

msg, _ = ob.client_preamble(keyword)
wrong, _ = ob.client_preamble(b"not-the-keyword")
print(json.dumps({"first": answer(msg), "replay": answer(msg), "wrong_keyword": answer(wrong)}))
"""


@pytest.fixture
def tunnel(topology, supervisor, tmp_path: Path):
    start_dns(topology, supervisor)
    echo = supervisor.start(
        topology["voip"],
        "echo",
        [sys.executable, "-m", "harness.net.echo", "serve", "--host", topology.addr("voip"),
         "--port", str(ECHO_PORT)],
    )  # fmt: skip
    echo.wait_for_event("ready", 10)
    ctx = TrialContext(None, "open", "psiphon-like", "echo", 0, topology, supervisor, tmp_path,
                       None)  # type: ignore[arg-type]  # fmt: skip
    endpoint = PsiphonLike().start(ctx)
    ready = next(p for p in supervisor.processes if p.name == "ossh-client")
    return {"ctx": ctx, "endpoint": endpoint, "ready": ready.wait_for_event("ready", 1)}


def _client_json(ctx: TrialContext, argv: list[str], timeout: float = 20) -> dict:
    proc = ctx.topology["client"].run(argv, check=False, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stderr
    return json.loads(lines[-1])


def test_tcp_and_udp_echo_through_the_tunnel(tunnel) -> None:
    ctx, endpoint = tunnel["ctx"], tunnel["endpoint"]
    assert endpoint.udp and endpoint.socks == "127.0.0.1:1081"
    voip = ctx.topology.addr("voip")
    echo = [sys.executable, "-m", "harness.net.echo"]
    common = ["--host", voip, "--port", str(ECHO_PORT), "--socks", endpoint.socks]
    tcp = _client_json(ctx, [*echo, "tcp", *common])
    assert tcp["ok"], tcp
    udp = _client_json(ctx, [*echo, "udp", *common, "--count", "20"])
    assert udp["received"] == 20, udp
    rtt = _client_json(ctx, [sys.executable, "-c", RTT_SCRIPT, endpoint.socks, voip,
                             str(ECHO_PORT)])  # fmt: skip
    print(f"\npsiphon-like: setup {tunnel['ready']['setup_ms']} ms, tcp echo {tcp['ms']} ms, "
          f"udpgw rtt median {rtt['median_ms']:.2f} ms max {rtt['max_ms']:.2f} ms")  # fmt: skip
    assert rtt["median_ms"] < 50


def test_plain_ssh_client_gets_no_banner(tunnel) -> None:
    ctx = tunnel["ctx"]
    argv = ["timeout", "10", "ssh", "-F", "/dev/null", "-v", "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=3", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-p", str(PORT),
            f"probe@{ctx.topology.addr('proxy')}", "true"]  # fmt: skip
    proc = ctx.topology["client"].run(argv, check=False, timeout=15)
    assert proc.returncode != 0
    assert "Connection established" in proc.stderr  # the port is open...
    assert "Remote protocol version" not in proc.stderr  # ...but never answers as SSH
    assert "banner exchange" in proc.stderr
    server = next(p for p in ctx.supervisor.processes if p.name == "ossh-server")
    server.wait_for_line(r'"event": "rejected"', 5)


def test_replayed_seed_and_wrong_keyword_get_no_answer(tunnel) -> None:
    ctx = tunnel["ctx"]
    server = next(p for p in ctx.supervisor.processes if p.name == "ossh-server")
    keyword = server.argv[server.argv.index("--keyword") + 1]
    got = _client_json(ctx, [sys.executable, "-c", REPLAY_SCRIPT, ctx.topology.addr("proxy"),
                             str(PORT), keyword])  # fmt: skip
    assert got["first"] > 0  # a fresh, valid seed message: the server answers
    assert got["replay"] == 0 and got["wrong_keyword"] == 0, got
    server.wait_for_line(r"duplicate obfuscation seed", 5)


def test_sip_call_rides_the_tunnel_past_udp_throttle_and_ssh_dpi(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setitem(registry.TOOLS, "psiphon-like", TOOL_ENTRY)
    scenario = parse_scenario(
        "name: e2e-psiphon-like\ntrials: 1\ncall_seconds: 2\napps: [sip]\n"
        "tools: [direct, shadowsocks, psiphon-like]\n"
        "censors:\n"
        "  throttle: [{type: udp_throttle, rate: 16kbit}]\n"
        "  ssh-dpi: [{type: dpi_block, protocols: [ssh]}]\n"
    )
    results = Runner(scenario, tmp_path / "out").run()
    # The cell that tells tools apart: under the UDP throttle, the control and shadowsocks'
    # plain UDP relay starve; only UDP inside the TCP tunnel (UDPGW) keeps the call usable.
    for result in results:
        if result.tool != "psiphon-like" and result.censor == "throttle":
            print(f"\n{result.tool} call under throttle: outcome {result.outcome}, "
                  f"mos {result.call.mos if result.call else None}")  # fmt: skip
            assert result.call is None or result.call.mos is None or result.call.mos < 3.6
    for result in (r for r in results if r.tool == "psiphon-like"):
        mos = result.call.mos if result.call else None
        print(f"\npsiphon-like call under {result.censor}: outcome {result.outcome}, "
              f"tool setup {result.tool_setup_ms} ms, mos {mos}")  # fmt: skip
        assert result.outcome == "ok", result.error
        assert result.call is not None and result.call.mos is not None
        assert result.call.mos >= 3.6, result.call
        # RTP went over UDPGW: the server opened the magic forward for this session
        server_log = Path(result.logs["dir"]) / "logs" / "proxy.ossh-server.out"
        assert '"event": "udpgw"' in server_log.read_text()


def test_cli_entry_points_have_help() -> None:
    for module in ("server", "client"):
        out = subprocess.run(
            [sys.executable, "-m", f"harness.tools.psiphon_like.{module}", "--help"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert "--keyword" in out and "--password" in out
