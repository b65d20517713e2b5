"""Compiling techniques into kernel rules: directions, per-flow draws, shaping classes."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from censor_sims.kernel import iptables_restore_text, tc_batch_text
from censor_sims.technique import CensorContext, KernelPlan, rate_bits, technique_names
from censor_sims.techniques.ip_block import IpBlock
from censor_sims.techniques.port_block import PortBlock
from censor_sims.techniques.udp_throttle import UdpThrottle
from harness.topology.addressing import AddressPool


def compile_all(*techniques) -> KernelPlan:
    ctx = CensorContext(AddressPool().acquire().as_dict())
    plan = KernelPlan()
    for t in techniques:
        t.compile(ctx, plan)
    return plan


def test_registry_lists_kernel_techniques() -> None:
    assert {"port_block", "ip_block", "udp_throttle"} <= set(technique_names())


def test_port_block_directions() -> None:
    both = compile_all(PortBlock(proto="udp", ports=[5060]))
    assert [r.spec[:4] for r in both.rules] == [
        ["-i", "inside", "-o", "outside"],
        ["-i", "outside", "-o", "inside"],
    ]
    assert "--dports" in both.rules[0].spec and "--sports" in both.rules[1].spec
    up = compile_all(PortBlock(proto="tcp", ports=[443], direction="upstream", action="reject"))
    assert len(up.rules) == 1 and up.rules[0].spec[-3:] == ["REJECT", "--reject-with", "tcp-reset"]


def test_probability_adds_a_per_flow_draw() -> None:
    plan = compile_all(PortBlock(proto="udp", ports=[5060], probability=0.25))
    draw, *blocks = plan.rules
    assert draw.table == "mangle" and "NEW" in draw.spec and "0.250000" in draw.spec
    assert all("connmark" in b.spec for b in blocks)


def test_ip_block_resolves_role_names() -> None:
    addresses = AddressPool().acquire()
    ctx = CensorContext(addresses.as_dict())
    plan = KernelPlan()
    IpBlock(hosts=["voip", "192.0.2.0/24"]).compile(ctx, plan)
    assert f"{addresses.addr('voip')},192.0.2.0/24" in plan.rules[0].spec
    with pytest.raises(ValidationError, match="neither a host role"):
        IpBlock(hosts=["vopi"])


def test_udp_throttle_shapes_each_leg_and_spares_dns() -> None:
    plan = compile_all(UdpThrottle(rate="16kbit", loss=0.1))
    text = iptables_restore_text(plan)
    assert text.count("CLASSIFY") == 2 and text.count("statistic") == 2
    assert "-m udp ! --dport 53 -m udp ! --sport 53" in text  # not merged into an OR by nft
    tc = tc_batch_text(plan)
    assert "dev outside root handle 1: htb" in tc and "dev inside root handle 1: htb" in tc
    assert tc.count("rate 16kbit ceil 16kbit") == 2


def test_rates() -> None:
    assert rate_bits("16kbit") == 16000
    assert rate_bits("1.5mbit") == 1.5e6
    assert rate_bits("10kbps") == 80000
    with pytest.raises(ValueError, match="kbit"):
        rate_bits("fast")


def test_address_pool_blocks_are_disjoint_and_reused() -> None:
    pool = AddressPool("10.77.0.0/23")
    a, b = pool.acquire(), pool.acquire()
    assert a.block != b.block
    with pytest.raises(RuntimeError, match="exhausted"):
        pool.acquire()
    pool.release(a)
    assert pool.acquire().block == a.block
    assert a.addr("censor", "inside") != a.addr("censor", "outside")
    assert a.gateway("client") == a.addr("censor", "inside")


def test_direction_is_refused_where_it_would_be_ignored() -> None:
    from censor_sims.techniques.sni_filter import SniFilter

    with pytest.raises(ValidationError, match="whole flows"):
        SniFilter(names=["x.test"], direction="upstream")
    assert SniFilter(names=["x.test"]).direction == "both"


def test_bad_regex_is_refused_whatever_the_key_order() -> None:
    from censor_sims.techniques.dns_poison import DnsPoison

    with pytest.raises(ValidationError, match="not a valid regex"):
        DnsPoison(names=["(bad"], match="regex")
