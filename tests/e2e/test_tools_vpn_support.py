"""Shared by the real-tool end-to-end tests (no tests here): a trial with an HTTP server and
an echo server on `voip`, a censor that blackholes `voip` and `dns` for the direct path, and
checks that run from the client host exactly as an app would (curl, the echo probe)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.techniques.ip_block import IpBlock
from harness.pki import make_ca
from harness.tools.base import Tool
from harness.topology.dns import start_dns
from harness.trial import Endpoint, TrialContext

pytestmark = pytest.mark.e2e

HTTP_PORT = 8080
ECHO_PORT = 7007
BODY = b"gatecrash says hello through the tunnel\n" * 50
ECHO = [sys.executable, "-m", "harness.net.echo"]


@dataclass
class Measured:
    http_ok: bool
    udp_received: int
    udp_sent: int


def start_outside_servers(topology, supervisor, tmp_path: Path) -> None:
    """DNS, an HTTP server (BODY at /hello.txt) and a UDP/TCP echo server on `voip`."""
    start_dns(topology, supervisor)
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_bytes(BODY)
    voip = topology.addr("voip")
    http = supervisor.start(
        topology["voip"],
        "http",
        [sys.executable, "-m", "http.server", "--bind", voip, "--directory", str(www),
         str(HTTP_PORT)],
    )  # fmt: skip
    echo = supervisor.start(
        topology["voip"], "echo", [*ECHO, "serve", "--host", voip, "--port", str(ECHO_PORT)]
    )
    echo.wait_for_event("ready", 10)
    http.wait_until(lambda: topology["voip"].listening(HTTP_PORT), 10, "HTTP listening")


@contextlib.contextmanager
def blocked_trial(topology, supervisor, tmp_path: Path, tool: str) -> Iterator[TrialContext]:
    """Servers outside, censor blocking the direct path; returns a context for the tool."""
    start_outside_servers(topology, supervisor, tmp_path)
    censor = Censor(
        topology["censor"],
        [IpBlock(hosts=["voip", "dns"])],
        topology.addresses.as_dict(),
        EventLog(tmp_path / "censor.jsonl"),
    )
    censor.start()
    try:
        yield TrialContext(None, "ip-block", tool, "probe", 0, topology, supervisor, tmp_path,
                           make_ca(tmp_path / "pki"))  # type: ignore[arg-type]  # fmt: skip
    finally:
        censor.stop()


def measure(ctx: TrialContext, endpoint: Endpoint, wait: float = 2.0) -> Measured:
    """HTTP fetch with curl and a UDP echo, through the SOCKS5 port if the tool exposes one,
    else straight from the client host (a tun tool's routing has to carry them)."""
    client, voip = ctx.topology["client"], ctx.topology.addr("voip")
    url = f"http://{voip}:{HTTP_PORT}/hello.txt"
    proxy = ["--socks5", endpoint.socks] if endpoint.socks else ["--noproxy", "*"]
    curl = client.run(["curl", "-sS", "--max-time", str(wait + 1), *proxy, url], check=False)
    via = ["--socks", endpoint.socks] if endpoint.socks else []
    udp = client.run(
        [*ECHO, "udp", "--host", voip, "--port", str(ECHO_PORT), "--count", "10",
         "--wait", str(wait), *via],
        check=False,
    )  # fmt: skip
    result = json.loads(udp.stdout.strip().splitlines()[-1])
    return Measured(curl.stdout.encode() == BODY, result["received"], result["sent"])


def assert_direct_blocked(ctx: TrialContext) -> None:
    direct = measure(ctx, Endpoint(), wait=0.5)
    assert not direct.http_ok and direct.udp_received == 0, "the censor must block the direct path"


def assert_carries(tool: Tool, got: Measured) -> None:
    """TCP works, and UDP works exactly when the tool claims it does (what `tools list`
    shows comes from the same class attribute)."""
    assert got.http_ok, f"{tool.name}: HTTP fetch through the tool failed"
    if tool.udp == "none":
        assert got.udp_received == 0, f"{tool.name} claims no UDP but carried {got}"
    else:
        assert got.udp_received == got.udp_sent, f"{tool.name} claims UDP {tool.udp}: {got}"
