"""Manifest tools across a censor that blocks the direct path (ip_block on `voip`): an HTTP
fetch by curl through each tool's SOCKS5 to a web server on `voip`, a UDP echo through UDP
ASSOCIATE, and the UDP capability `gatecrash tools list` claims equal to what was measured.

One topology and one censor serve every tool in turn (each tool gets its own supervisor),
which keeps the whole file within a few seconds per tool.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.techniques.ip_block import IpBlock
from censor_sims.techniques.port_block import PortBlock
from harness import registry
from harness.tools.base import ToolFailed
from harness.tools.listing import tool_rows
from harness.topology.addressing import AddressPool
from harness.topology.dns import start_dns
from harness.topology.netns import NetnsTopology
from harness.topology.process import Supervisor
from harness.trial import TrialContext

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "tools"
HTTP_PORT, ECHO_PORT = 8080, 7007
BODY = "gatecrash manifest tools: fetched through the tunnel\n"
UDP_COUNT = 10

# What a UDP ASSOCIATE through the tool measures: "native" when every echo came back,
# "none" when the association is refused or nothing returns.
UDP_MEASURE = """
import asyncio, json, sys
from harness.net.socks5 import ProxyAddress, UdpAssociation

async def main(socks, host, port, count):
    got = set()
    try:
        assoc = await UdpAssociation.open(ProxyAddress.parse(socks),
                                          lambda d, a: got.add(d), timeout=3)
    except Exception as exc:
        return {"received": 0, "error": f"{type(exc).__name__}: {exc}"}
    for i in range(count):
        assoc.sendto(b"udp-%d" % i, (host, port))
        await asyncio.sleep(0.01)
    for _ in range(200):
        if len(got) == count:
            break
        await asyncio.sleep(0.01)
    assoc.close()
    return {"received": len(got)}

print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))))
"""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[dict]:
    """Topology, DNS, a web server and an echo server on `voip`, and the censor."""
    assert os.geteuid() == 0, "end-to-end tests build namespaces: run them as root (CI does)"
    tmp = tmp_path_factory.mktemp("manifest-tools")
    (tmp / "www").mkdir()
    (tmp / "www" / "hello.txt").write_text(BODY)
    topo = NetnsTopology(f"m{os.getpid() % 100000}", 0, AddressPool().acquire(), tmp)
    with topo:
        sup = Supervisor(tmp / "logs")
        try:
            start_dns(topo, sup)
            voip = topo.addr("voip")
            www = str(tmp / "www")
            http = sup.start(topo["voip"], "http", [sys.executable, "-m", "http.server",
                             "--bind", voip, "--directory", www, str(HTTP_PORT)])  # fmt: skip
            echo = sup.start(topo["voip"], "echo", [sys.executable, "-m", "harness.net.echo",
                             "serve", "--host", voip, "--port", str(ECHO_PORT)])  # fmt: skip
            echo.wait_for_event("ready", 10)
            http.wait_until(lambda: topo["voip"].listening(HTTP_PORT), 10, "http listening")
            log = EventLog(tmp / "censor.jsonl")
            censor = Censor(topo["censor"], [IpBlock(hosts=["voip"])],
                            topo.addresses.as_dict(), log)  # fmt: skip
            censor.start()
            try:
                yield {"topology": topo, "supervisor": sup, "tmp": tmp}
            finally:
                censor.stop()
        finally:
            sup.stop_all()


def _fetch(topo, socks: str | None) -> subprocess.CompletedProcess[str]:
    url = f"http://{topo.addr('voip')}:{HTTP_PORT}/hello.txt"
    proxy = ["--socks5-hostname", socks] if socks else []
    return topo["client"].run(["curl", "-sS", "--max-time", "3", *proxy, url], check=False)


def _udp(topo, socks: str) -> dict:
    argv = [sys.executable, "-c", UDP_MEASURE, socks, topo.addr("voip"), str(ECHO_PORT),
            str(UDP_COUNT)]  # fmt: skip
    out = topo["client"].run(argv, check=False, timeout=20).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_direct_path_is_blocked(world) -> None:
    topo = world["topology"]
    assert _fetch(topo, None).returncode != 0
    probe = topo["client"].run([sys.executable, "-m", "harness.net.echo", "udp", "--host",
                                topo.addr("voip"), "--port", str(ECHO_PORT), "--count", "3",
                                "--wait", "0.5"]).stdout  # fmt: skip
    assert json.loads(probe.splitlines()[-1])["received"] == 0


def run_tool(world, name: str, tmp_path: Path) -> dict:
    """Start tool `name` (as the runner would), fetch and echo through it, stop it."""
    topo = world["topology"]
    claimed = {r.name: r for r in tool_rows([name])}[name]
    sup = Supervisor(tmp_path / "logs")
    try:
        ctx = TrialContext(None, "ip-block", name, "http", 0, topo, sup, tmp_path,
                           None)  # type: ignore[arg-type]  # fmt: skip
        started = time.monotonic()
        endpoint = registry.load(registry.TOOLS, name)().start(ctx)
        setup_ms = (time.monotonic() - started) * 1000
        assert endpoint.socks
        fetched = _fetch(topo, endpoint.socks)
        udp = _udp(topo, endpoint.socks)
    finally:
        sup.stop_all()
    measured = "native" if udp["received"] == UDP_COUNT else "none"
    print(f"\n{name}: ready end to end in {setup_ms:.0f} ms, http rc {fetched.returncode}, "
          f"udp {udp}, claimed udp {claimed.udp}")  # fmt: skip
    return {"fetched": fetched, "udp": udp, "measured": measured, "claimed": claimed,
            "endpoint": endpoint}  # fmt: skip


@pytest.mark.parametrize(
    "name", ["obfs4", "shadowsocks-v2ray-plugin", "v2ray", "trojan", "stunnel"]
)
def test_tool_fetches_and_udp_matches_claim(world, name: str, tmp_path: Path, monkeypatch) -> None:
    example = EXAMPLES / name / "tool.yaml"
    if example.exists():  # the example tool, registered as --tools-dir would
        monkeypatch.setitem(registry.TOOLS, name, registry.MANIFEST_PREFIX + str(example))
    got = run_tool(world, name, tmp_path)
    assert got["fetched"].returncode == 0, got["fetched"].stderr
    assert got["fetched"].stdout == BODY
    assert got["claimed"].version and "not installed" not in got["claimed"].version
    assert got["measured"] == got["claimed"].udp, got["udp"]
    assert got["endpoint"].udp == (got["claimed"].udp != "none")


def test_shadowsocks_v2ray_plugin_udp_bypasses_the_plugin(topology, supervisor, tmp_path) -> None:
    """SIP003 plugins carry TCP only: UDP goes as plain shadowsocks UDP to the server port,
    not through the WebSocket plugin. Blocking UDP to that port leaves TCP working and kills
    UDP."""
    start_dns(topology, supervisor)
    voip = topology.addr("voip")
    echo = supervisor.start(topology["voip"], "echo", [sys.executable, "-m", "harness.net.echo",
                            "serve", "--host", voip, "--port", str(ECHO_PORT)])  # fmt: skip
    echo.wait_for_event("ready", 10)
    tool_cls = registry.load(registry.TOOLS, "shadowsocks-v2ray-plugin")
    port = tool_cls.manifest.ports["server"]
    censor = Censor(topology["censor"], [PortBlock(proto="udp", ports=[port])],
                    topology.addresses.as_dict(), EventLog(tmp_path / "censor.jsonl"))  # fmt: skip
    censor.start()
    try:
        ctx = TrialContext(None, "udp-port", "ss", "echo", 0, topology, supervisor, tmp_path,
                           None)  # type: ignore[arg-type]  # fmt: skip
        endpoint = tool_cls().start(ctx)
        tcp = topology["client"].run([sys.executable, "-m", "harness.net.echo", "tcp", "--host",
                                      voip, "--port", str(ECHO_PORT), "--socks",
                                      endpoint.socks]).stdout  # fmt: skip
        udp = _udp(topology, endpoint.socks)
    finally:
        censor.stop()
    assert json.loads(tcp.splitlines()[-1])["ok"]
    assert udp["received"] == 0, udp


def test_pt_error_fails_the_tool_naming_the_line(world, tmp_path: Path, monkeypatch) -> None:
    """A Tor PT that cannot bind says SMETHOD-ERROR: the tool fails with that line, and
    stopping the supervisor leaves none of its processes running."""
    text = (REPO / "harness/tools/obfs4/tool.yaml").read_text()
    broken = tmp_path / "obfs4-broken" / "tool.yaml"
    broken.parent.mkdir()
    text = text.replace("name: obfs4\n", "name: obfs4-broken\n")
    broken.write_text(text.replace("{proxy_addr}:{port.bridge}", "192.0.2.1:{port.bridge}"))
    monkeypatch.setitem(registry.TOOLS, "obfs4-broken", registry.MANIFEST_PREFIX + str(broken))
    sup = Supervisor(tmp_path / "logs")
    ctx = TrialContext(None, "ip-block", "obfs4-broken", "http", 0, world["topology"], sup,
                       tmp_path, None)  # type: ignore[arg-type]  # fmt: skip
    try:
        with pytest.raises(ToolFailed, match=r"SMETHOD-ERROR obfs4"):
            registry.load(registry.TOOLS, "obfs4-broken")().start(ctx)
        procs = list(sup.processes)
    finally:
        sup.stop_all()
    assert procs and not any(p.running() for p in procs)
