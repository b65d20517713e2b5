"""The netns backend: the censor is the only path, nothing leaks onto the host, nothing stays."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.topology.addressing import AddressPool
from harness.topology.base import WIRE_GSO_MAX
from harness.topology.dns import start_dns
from harness.topology.namespaces import NETNS_ETC, list_namespaces
from harness.topology.netns import NetnsTopology
from tests.conftest import host_network_state

pytestmark = pytest.mark.e2e


def test_client_reaches_servers_only_through_the_censor(topology) -> None:
    client = topology["client"]
    route = client.run(["ip", "route", "get", topology.addr("voip")]).stdout
    assert f"via {topology.addresses.gateway('client')}" in route
    client.run(["ping", "-c", "1", "-W", "2", topology.addr("voip")])
    # With forwarding off at the censor, inside and outside cannot talk at all.
    topology["censor"].run(["sysctl", "-qw", "net.ipv4.ip_forward=0"])
    lost = client.run(["ping", "-c", "1", "-W", "1", topology.addr("voip")], check=False)
    assert lost.returncode != 0


def test_hosts_send_wire_sized_packets(topology) -> None:
    """No 64 KB GSO packets reach the censor's shapers (see WIRE_GSO_MAX)."""
    for role in ("client", "resolver", "voip", "chat", "proxy", "dns", "front"):
        details = topology[role].run(["ip", "-d", "link", "show", "eth0"]).stdout
        assert f"gso_max_size {WIRE_GSO_MAX} " in details, (role, details)


def test_inside_resolver_answers_run_zone_names_via_outside_dns(topology, supervisor) -> None:
    start_dns(topology, supervisor)
    answer = (
        topology["client"].run(["getent", "ahostsv4", "voip.gatecrash.test"], check=False).stdout
    )
    assert topology.addr("voip") in answer
    # The lookup crossed the censor: the outside server logged the resolver's query.
    log = (supervisor.log_dir / "dns.dnsmasq.err").read_text()
    assert "voip.gatecrash.test" in log and topology.addr("resolver") in log


def test_up_and_down_leave_host_unchanged(tmp_path: Path) -> None:
    before = host_network_state()
    topo = NetnsTopology("tinv", 0, AddressPool().acquire(), tmp_path)
    with topo:
        assert set(topo.namespaces.values()) <= set(list_namespaces())
        assert host_network_state() == before
    assert host_network_state() == before
    assert not [ns for ns in list_namespaces() if ns.startswith("gc-tinv-")]
    assert not list(NETNS_ETC.glob("gc-tinv-*"))


def test_down_kills_processes_left_in_namespaces(tmp_path: Path) -> None:
    topo = NetnsTopology("tkill", 0, AddressPool().acquire(), tmp_path)
    with topo:
        sleeper = subprocess.Popen(topo["voip"].wrap(["sleep", "300"]), start_new_session=True)
    assert sleeper.wait(5) is not None
