"""The run's DNS: an authoritative server outside (`dns`) for the run zone, and the ISP
resolver inside (`resolver`) that forwards to it without caching, so that every lookup an
app makes crosses the censor, where DNS censorship acts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.programs import require
from harness.topology.base import ZONE, Topology, fqdn
from harness.topology.process import ManagedProcess, Supervisor

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
    records = [f"--host-record={name},{ip}" for name, ip in zone_records(topology).items()]
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


# Ordinary names served by outside hosts, for the bystander workloads (harness/apps/web,
# download, dns): a site on a few hostnames and an update server, as a user browses them.
# The site's static host has `t.co` in its name across a label boundary, as microsoft.com
# and reddit.com do: the names Russia's TSPU throttled by mistake in March 2021 (Xue et al.,
# IMC 2021), which the russia-tspu-2021 profile's substring rule reproduces.
ALIASES = {"www": "chat", "static.intranet.corp": "chat", "cdn": "voip", "updates": "voip"}


def zone_records(topology: Topology) -> dict[str, str]:
    """The authoritative A records of the run zone: name -> address."""
    roles = {fqdn(role): topology.addr(role) for role in ("voip", "chat", "proxy", "dns", "front")}
    return roles | {fqdn(alias): topology.addr(role) for alias, role in ALIASES.items()}


@dataclass
class _SameHost:
    """The host a supervised process runs in, recovered from how it was wrapped."""

    name: str
    prefix: list[str]

    def wrap(self, argv: Sequence[str]) -> list[str]:
        return [*self.prefix, *argv]


def relaunch_resolver(
    supervisor: Supervisor, extra: list[str], timeout: float = 5.0
) -> ManagedProcess:
    """Restart the run's inside resolver with extra dnsmasq options: a censor that makes
    the ISP resolver lie (`--address=/name/IP`). Nothing is lost: it keeps no cache."""
    running = [p for p in supervisor.processes if p.host == "resolver" and p.running()]
    old = next((p for p in running if p.name.startswith(DNSMASQ)), None)
    if old is None:
        raise RuntimeError(
            "the inside resolver is not running: start_dns() must come before a censor "
            "that configures the resolver (dns_poison mode resolver)"
        )
    wrapped = list(old.popen.args)  # type: ignore[arg-type]
    host = _SameHost("resolver", wrapped[: len(wrapped) - len(old.argv)])
    old.stop()
    supervisor.processes.remove(old)
    new = supervisor.start(host, f"{DNSMASQ}-censored", [*old.argv, *extra])
    new.wait_for_line(r"started, version", timeout)
    return new
