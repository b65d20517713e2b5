"""The run's DNS: an authoritative server outside (`dns`) for the run zone, and the ISP
resolver inside (`resolver`) that forwards to it without caching, so that every lookup an
app makes crosses the censor, where DNS censorship acts."""

from __future__ import annotations

from harness.programs import require
from harness.topology.base import ZONE, Topology, fqdn
from harness.topology.process import Supervisor

DNSMASQ = "dnsmasq"
_COMMON = [
    "--keep-in-foreground",
    "--conf-file=/dev/null",
    "--no-resolv",
    "--no-hosts",
    "--bind-interfaces",
    "--user=root",
    "--pid-file=",
    "--log-facility=-",
    "--log-queries",
]


def start_dns(topology: Topology, supervisor: Supervisor, timeout: float = 5.0) -> None:
    require(DNSMASQ, "dnsmasq-base")
    dns_ip, resolver_ip = topology.addr("dns"), topology.addr("resolver")
    records = [f"--host-record={fqdn(r)},{ip}" for r, ip in _zone(topology).items()]
    auth = supervisor.start(
        topology["dns"],
        "dnsmasq",
        [DNSMASQ, *_COMMON, f"--listen-address={dns_ip}", f"--local=/{ZONE}/", *records],
    )
    resolver = supervisor.start(
        topology["resolver"],
        "dnsmasq",
        [
            DNSMASQ,
            *_COMMON,
            f"--listen-address={resolver_ip}",
            f"--server={dns_ip}",
            "--cache-size=0",
        ],
    )
    for proc in (auth, resolver):
        proc.wait_for_line(r"started, version", timeout)


def _zone(topology: Topology) -> dict[str, str]:
    return {role: topology.addr(role) for role in ("voip", "chat", "proxy", "dns", "front")}
