"""Kernel-layer techniques with real packets: the censored flow fails the way the technique
says, an uncensored one passes, and the event log records both the rule and its hits."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.techniques.ip_block import IpBlock
from censor_sims.techniques.port_block import PortBlock
from censor_sims.techniques.udp_throttle import UdpThrottle

pytestmark = pytest.mark.e2e

ECHO = [sys.executable, "-m", "harness.net.echo"]


def _echo_servers(topology, supervisor, host: str, ports: list[int]) -> None:
    for port in ports:
        proc = supervisor.start(
            topology[host], f"echo{port}", [*ECHO, "serve", "--host", topology.addr(host),
                                            "--port", str(port)],
        )  # fmt: skip
        proc.wait_for_event("ready", 5)


def _probe(topology, proto: str, host: str, port: int, *extra: str) -> dict:
    out = (
        topology["client"]
        .run([*ECHO, proto, "--host", topology.addr(host), "--port", str(port), *extra])
        .stdout
    )
    return json.loads(out.strip().splitlines()[-1])


def _censor(topology, tmp_path: Path, *techniques) -> tuple[Censor, EventLog]:
    log = EventLog(tmp_path / "censor.jsonl")
    censor = Censor(topology["censor"], list(techniques), topology.addresses.as_dict(), log)
    censor.start()
    return censor, log


def _hits(log: EventLog, technique: str) -> int:
    return sum(
        e["packets"] for e in log.read() if e["technique"] == technique and e["action"] == "matched"
    )


def test_port_block_drops_udp_port_and_passes_others(topology, supervisor, tmp_path) -> None:
    _echo_servers(topology, supervisor, "voip", [5060, 5070])
    censor, log = _censor(topology, tmp_path, PortBlock(proto="udp", ports=[5060]))
    blocked = _probe(topology, "udp", "voip", 5060, "--count", "5", "--wait", "0.5")
    passed = _probe(topology, "udp", "voip", 5070, "--count", "5")
    tcp_same_port = _probe(topology, "tcp", "voip", 5060)
    censor.stop()
    assert blocked["received"] == 0
    assert passed["received"] == 5
    assert tcp_same_port["ok"], "proto udp must leave TCP 5060 alone"
    assert _hits(log, "port_block") == 5
    assert any(e["action"] == "install" for e in log.read())


def test_port_block_reject_resets_tcp(topology, supervisor, tmp_path) -> None:
    _echo_servers(topology, supervisor, "chat", [5222])
    censor, log = _censor(topology, tmp_path, PortBlock(proto="tcp", ports=[5222], action="reject"))
    result = _probe(topology, "tcp", "chat", 5222, "--wait", "2")
    censor.stop()
    assert result["outcome"] in ("refused", "reset")
    assert _hits(log, "port_block") >= 1


def test_ip_block_by_role_name(topology, supervisor, tmp_path) -> None:
    _echo_servers(topology, supervisor, "voip", [7000])
    _echo_servers(topology, supervisor, "chat", [7000])
    censor, log = _censor(topology, tmp_path, IpBlock(hosts=["voip"]))
    blocked = _probe(topology, "tcp", "voip", 7000, "--wait", "1")
    passed = _probe(topology, "tcp", "chat", 7000)
    censor.stop()
    assert blocked["outcome"] == "timeout"
    assert passed["ok"]
    assert _hits(log, "ip_block") >= 1


def test_udp_throttle_limits_rate_but_spares_dns_and_tcp(topology, supervisor, tmp_path) -> None:
    _echo_servers(topology, supervisor, "voip", [4000])
    censor, log = _censor(topology, tmp_path, UdpThrottle(rate="16kbit", queue=5))
    # 200 datagrams of ~10 bytes in 2 s: about 40 kbit/s on the wire in each direction.
    udp = _probe(topology, "udp", "voip", 4000, "--count", "200", "--wait", "1")
    tcp = _probe(topology, "tcp", "voip", 4000)
    censor.stop()
    assert udp["received"] < 150, udp
    assert udp["received"] > 0, "a throttle is not a block"
    assert tcp["ok"]
    assert _hits(log, "udp_throttle") >= 200


def test_udp_throttle_total_loss_still_spares_dns(topology, supervisor, tmp_path) -> None:
    """DNS in both directions passes a UDP throttle that drops everything else: a guard
    against iptables-nft merging `! --dport 53 ! --sport 53` into a pair compare (an OR)."""
    _echo_servers(topology, supervisor, "voip", [53, 4000])
    censor, log = _censor(topology, tmp_path, UdpThrottle(loss=1.0))
    dns_port = _probe(topology, "udp", "voip", 53, "--count", "5")
    other = _probe(topology, "udp", "voip", 4000, "--count", "5", "--wait", "0.5")
    censor.stop()
    assert dns_port["received"] == 5, dns_port
    assert other["received"] == 0, other
    assert _hits(log, "udp_throttle") == 5


@pytest.mark.parametrize("probability", [0.5])
def test_probability_is_drawn_per_flow(topology, supervisor, tmp_path, probability) -> None:
    _echo_servers(topology, supervisor, "voip", [7100])
    censor, _ = _censor(
        topology, tmp_path, PortBlock(proto="tcp", ports=[7100], probability=probability)
    )
    outcomes = [_probe(topology, "tcp", "voip", 7100, "--wait", "0.3")["ok"] for _ in range(30)]
    censor.stop()
    # Whole flows pass or fail: each connection either echoes or never connects.
    blocked = outcomes.count(False)
    assert 3 <= blocked <= 27, f"{blocked}/30 blocked at probability {probability}"
