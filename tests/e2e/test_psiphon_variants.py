"""The Psiphon-like tool's TLS-OSSH and meek variants across censors that block the direct
path: an HTTP fetch and a UDP echo (over UDPGW) through each, plus what each is for.

- TLS-OSSH: fully-encrypted-traffic detection (fet_block) resets plain OSSH, and SSH DPI
  recognises neither; inside TLS the same OSSH passes both.
- meek: with the proxy's address blackholed, meek still works because the client only ever
  talks to `front`; a capture of the censor's legs shows no packet to or from the proxy's
  address and no SNI but the front domain. With the proxy's name on an SNI blocklist, a
  TLS-OSSH client naming it is reset while fronted meek carries on.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from censor_sims import kernel
from censor_sims.capture import start_capture, stop_capture
from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.technique import Technique
from censor_sims.techniques.dpi_block import DpiBlock
from censor_sims.techniques.fet_block import FetBlock
from censor_sims.techniques.ip_block import IpBlock
from censor_sims.techniques.sni_filter import SniFilter
from harness import registry
from harness.pki import make_ca
from harness.programs import require
from harness.tools.base import Tool, ToolFailed
from harness.tools.psiphon_like.tool import PORT as OSSH_PORT
from harness.tools.psiphon_like.tool import PsiphonLike
from harness.tools.psiphon_like.variants import (
    MEEK_ORIGIN_PORT,
    TLS_PORT,
    PsiphonLikeMeek,
    PsiphonLikeTls,
    PsiphonLikeTlsOptions,
)
from harness.topology.base import fqdn
from harness.topology.process import ProcessFailed
from harness.trial import TrialContext
from tests.e2e.test_psiphon_like import RTT_SCRIPT
from tests.e2e.test_tools_vpn_support import (
    ECHO_PORT,
    assert_carries,
    assert_direct_blocked,
    measure,
    start_outside_servers,
)

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def censored_trial(
    topology, supervisor, tmp_path: Path, techniques: list[Technique], block_voip: bool = True
) -> Iterator[tuple[TrialContext, Censor]]:
    """HTTP and echo servers on `voip`, DNS, and a censor (kernel rules and the DPI engine)
    that blocks the direct path to `voip` and `dns` plus whatever `techniques` add."""
    start_outside_servers(topology, supervisor, tmp_path)
    censor = Censor(
        topology["censor"],
        [*([IpBlock(hosts=["voip", "dns"])] if block_voip else []), *techniques],
        topology.addresses.as_dict(),
        EventLog(tmp_path / "censor.jsonl"),
        supervisor,
        tmp_path,
    )
    censor.start()
    try:
        yield TrialContext(None, "variants", "psiphon-like-*", "probe", 0, topology, supervisor,
                           tmp_path, make_ca(tmp_path / "pki")), censor  # type: ignore[arg-type]  # fmt: skip
    finally:
        censor.stop()


def _client_json(ctx: TrialContext, argv: list[str]) -> dict:
    proc = ctx.topology["client"].run(argv, check=False, timeout=20)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert lines, proc.stderr
    return json.loads(lines[-1])


def _start_and_measure(tool: Tool, ctx: TrialContext, process: str) -> dict:
    """Start the tool (ready = the end-to-end probe passed), fetch and echo through it, and
    measure UDP round trips over UDPGW."""
    started = time.monotonic()
    endpoint = tool.start(ctx)
    start_s = time.monotonic() - started
    assert endpoint.socks and endpoint.udp
    assert_carries(tool, measure(ctx, endpoint))
    voip = ctx.topology.addr("voip")
    rtt = _client_json(ctx, [sys.executable, "-c", RTT_SCRIPT, endpoint.socks, voip,
                             str(ECHO_PORT)])  # fmt: skip
    client = next(p for p in ctx.supervisor.processes if p.name == process)
    ready = client.wait_for_event("ready", 1)
    print(f"\n{tool.name}: tunnel setup {ready['setup_ms']} ms (client), ready incl. probe "
          f"{start_s * 1e3:.0f} ms; udpgw rtt median {rtt['median_ms']:.2f} ms, "
          f"max {rtt['max_ms']:.2f} ms")  # fmt: skip
    return rtt


def _engine_events(ctx: TrialContext, technique: str) -> list[dict]:
    events = EventLog(ctx.dir / "censor.jsonl").read()
    return [e for e in events if e.get("layer") == "engine" and e["technique"] == technique]


def test_tls_ossh_passes_the_fet_detection_that_resets_plain_ossh(
    topology, supervisor, tmp_path: Path
) -> None:
    techniques: list[Technique] = [FetBlock(), DpiBlock(protocols=["ssh"])]
    with censored_trial(topology, supervisor, tmp_path, techniques) as (ctx, _censor):
        assert_direct_blocked(ctx)
        proxy = ctx.topology.addr("proxy")

        with pytest.raises((ToolFailed, ProcessFailed)):
            PsiphonLike().start(ctx)
        fet = _engine_events(ctx, "fet_block")
        assert any(e["flow"].endswith(f"-> {proxy}:{OSSH_PORT}") for e in fet), fet
        assert not _engine_events(ctx, "dpi_block")  # OSSH shows SSH DPI nothing to match

        rtt = _start_and_measure(PsiphonLikeTls(), ctx, "tls-ossh-client")
        assert rtt["median_ms"] < 50
        on_tls = [e for e in _engine_events(ctx, "fet_block") if f":{TLS_PORT}" in e["flow"]]
        assert not on_tls and not _engine_events(ctx, "dpi_block")
        server = next(p for p in supervisor.processes if p.name == "tls-ossh-server")
        server.wait_for_line(r'"event": "udpgw"', 2)  # UDP went over UDPGW inside TLS


def _tshark(pcap: Path, display_filter: str, field: str) -> list[str]:
    out = subprocess.run(
        ["tshark", "-r", str(pcap), "-Y", display_filter, "-T", "fields", "-e", field],
        capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    return [line for line in out.splitlines() if line]


def test_meek_is_fronted_past_an_ip_block_on_the_proxy(topology, supervisor, tmp_path) -> None:
    """The censor blackholes `proxy` too. A capture of both censor legs shows not one packet
    to or from the proxy's address while meek carried the traffic, and the only SNI it saw
    was the front domain; the block itself works (a direct attempt afterwards is dropped)."""
    require("tshark", "tshark")
    techniques: list[Technique] = [IpBlock(name="block-proxy", hosts=["proxy"])]
    pcap = tmp_path / "censor.pcapng"
    with censored_trial(topology, supervisor, tmp_path, techniques) as (ctx, censor):
        assert_direct_blocked(ctx)
        dumpcap = start_capture(ctx.topology["censor"], supervisor, pcap)
        rtt = _start_and_measure(PsiphonLikeMeek(), ctx, "meek-client")
        stop_capture(dumpcap)
        assert rtt["median_ms"] < 100

        def to_proxy() -> int:
            counters = kernel.read_counters(censor.host, censor.plan)
            return sum(c.packets for c in counters if c.rule.technique == "block-proxy")

        assert to_proxy() == 0
        front = next(p for p in supervisor.processes if p.name == "meek-front")
        route = front.wait_for_event("route", 1)
        assert route["sni"] == fqdn("front") and route["host"] == fqdn("proxy")
        assert route["peer"] == ctx.topology.addr("client")
        meek = next(p for p in supervisor.processes if p.name == "meek-server")
        assert meek.wait_for_event("meek-session", 1)["peer"] == ctx.topology.addr("client")
        meek.wait_for_line(r'"event": "udpgw"', 2)  # UDP went over UDPGW inside meek

        client, proxy = ctx.topology["client"], ctx.topology.addr("proxy")
        direct = client.run(["curl", "-sS", "--max-time", "1",
                             f"http://{proxy}:{MEEK_ORIGIN_PORT}/"], check=False)  # fmt: skip
        assert direct.returncode != 0 and to_proxy() > 0

    front_ip = topology.addr("front")
    assert not _tshark(pcap, f"ip.addr == {proxy}", "frame.number")
    assert _tshark(pcap, f"ip.dst == {front_ip} && tcp.dstport == 443", "frame.number")
    snis = _tshark(pcap, "tls.handshake.type == 1", "tls.handshake.extensions_server_name")
    assert snis and set(snis) == {fqdn("front")}, snis


def test_sni_filter_on_the_proxy_name_stops_tls_ossh_naming_it_but_not_meek(
    topology, supervisor, tmp_path
) -> None:
    """The proxy's name on an SNI blocklist: a TLS-OSSH client whose ClientHello names the
    proxy is reset; fronted meek, whose ClientHello names only the front, carries a fetch."""
    techniques: list[Technique] = [SniFilter(names=[fqdn("proxy")], match="exact")]
    with censored_trial(topology, supervisor, tmp_path, techniques, block_voip=False) as (
        ctx,
        _censor,
    ):
        endpoint = PsiphonLikeMeek().start(ctx)
        assert measure(ctx, endpoint).http_ok
        assert not _engine_events(ctx, "sni_filter")
        with pytest.raises((ToolFailed, ProcessFailed)):
            PsiphonLikeTls(PsiphonLikeTlsOptions(sni=fqdn("proxy"))).start(ctx)
        hits = _engine_events(ctx, "sni_filter")
        proxy = ctx.topology.addr("proxy")
        assert hits and all(e["flow"].endswith(f"-> {proxy}:{TLS_PORT}") for e in hits), hits


def test_variants_are_registered_with_udpgw() -> None:
    for name, cls in (("psiphon-like-tls", PsiphonLikeTls), ("psiphon-like-meek", PsiphonLikeMeek)):
        assert registry.load(registry.TOOLS, name) is cls
        assert cls.udp == "udpgw" and cls.exposes == "socks5"


def test_variant_entry_points_have_help() -> None:
    for module in ("tls_ossh", "meek_client", "meek_server", "front"):
        proc = subprocess.run(
            [sys.executable, "-m", f"harness.tools.psiphon_like.{module}", "--help"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert "usage:" in proc.stdout
