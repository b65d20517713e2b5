"""The netns backend: one network namespace per host, veth pairs into two bridges.

Layout of one trial:
    client, resolver --veth-- [br-in  | switch ns | br-out] --veth-- voip, chat, proxy, dns, front
                                  \\-- censor (inside) ... censor (outside) --/
The bridges live in a switch namespace of their own, so the censor is an ordinary router with
two legs and every inside<->outside packet crosses its FORWARD path. Nothing is created in the
host's namespace: the host's links, routes and firewall are never touched.
"""

from __future__ import annotations

import subprocess
import time

from harness.topology.addressing import ALL_ROLES, INSIDE_ROLES, OUTSIDE_ROLES
from harness.topology.base import (
    WIRE_GSO_MAX,
    CommandFailed,
    Host,
    Topology,
    fqdn,
    run_checked,
)
from harness.topology.leftovers import Leftover
from harness.topology.namespaces import NETNS_ETC, NS_PREFIX
from harness.topology.state import claim, release


def ns_name(run_id: str, slot: int, role: str) -> str:
    return f"{NS_PREFIX}{run_id}-{slot}-{role}"


def _ip_batch_argv(netns: str | None = None) -> list[str]:
    return ["ip", *(["-n", netns] if netns else []), "-batch", "-"]


def _ip_batch(commands: list[str], netns: str | None = None) -> None:
    run_checked(_ip_batch_argv(netns), input="\n".join(commands) + "\n")


def _run_together(argvs: list[list[str]], inputs: list[str | None], timeout: float = 30) -> None:
    """Independent set-up commands (one per namespace) side by side: a trial's hosts come
    up in the time of the slowest instead of the sum. Raises CommandFailed like
    run_checked, naming the first that failed."""
    procs = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
        for argv in argvs
    ]  # fmt: skip
    outcomes = [p.communicate(i, timeout=timeout) for p, i in zip(procs, inputs, strict=True)]
    for argv, proc, (_, err) in zip(argvs, procs, outcomes, strict=True):
        if proc.returncode != 0:
            raise CommandFailed(
                f"command failed ({proc.returncode}): {' '.join(argv)}\n{err.strip()}"
            )


class NetnsTopology(Topology):
    backend = "netns"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.switch = ns_name(self.run_id, self.slot, "sw")
        self.namespaces = {role: ns_name(self.run_id, self.slot, role) for role in ALL_ROLES}
        for role, ns in self.namespaces.items():
            self.hosts[role] = Host(role, self.addresses.addr(role), ["ip", "netns", "exec", ns])
        self.up_s = self.down_s = 0.0
        self.leftover_details: list[Leftover] = []

    def up(self) -> None:
        start = time.monotonic()
        all_ns = [self.switch, *self.namespaces.values()]
        claim(self.prefix)  # `gatecrash clean` leaves a live process's namespaces alone
        self._write_etc()
        _ip_batch([f"netns add {ns}" for ns in all_ns])
        self.hosts_exist()
        sw = ["link set lo up", "link add br-in type bridge", "link add br-out type bridge"]
        for role in (*INSIDE_ROLES, *OUTSIDE_ROLES):
            bridge = "br-in" if role in INSIDE_ROLES else "br-out"
            sw += [
                f"link add p-{role} type veth peer name eth0 netns {self.namespaces[role]}",
                f"link set p-{role} master {bridge} up",
            ]
        censor_ns = self.namespaces["censor"]
        for side, bridge in (("inside", "br-in"), ("outside", "br-out")):
            sw += [
                f"link add p-c{side} type veth peer name {side} netns {censor_ns}",
                f"link set p-c{side} master {bridge} up",
            ]
        sw += ["link set br-in up", "link set br-out up"]
        _ip_batch(sw, self.switch)
        plen = self.addresses.prefixlen()
        batches = {
            self.namespaces[role]: [
                "link set lo up",
                f"addr add {self.addresses.addr(role)}/{plen} dev eth0",
                f"link set eth0 gso_max_size {WIRE_GSO_MAX}",
                "link set eth0 up",
                f"route add default via {self.addresses.gateway(role)}",
            ]
            for role in (*INSIDE_ROLES, *OUTSIDE_ROLES)
        }
        batches[censor_ns] = [
            "link set lo up",
            f"addr add {self.addresses.addr('censor', 'inside')}/{plen} dev inside",
            f"addr add {self.addresses.addr('censor', 'outside')}/{plen} dev outside",
            "link set inside up",
            "link set outside up",
        ]
        forwarding = [*self.hosts["censor"].prefix, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                      "net.ipv4.conf.all.rp_filter=0"]  # fmt: skip
        _run_together([*(_ip_batch_argv(ns) for ns in batches), forwarding],
                      [*("\n".join(c) + "\n" for c in batches.values()), None])  # fmt: skip
        self.up_s = time.monotonic() - start

    def down(self) -> None:
        """Kill the trial's processes, delete its namespaces (retrying with back-off) and
        /etc/netns files; what cannot go is listed in `leftovers`, never raised."""
        from harness.topology.netns_remove import remove_namespaces

        start = time.monotonic()
        removal = remove_namespaces([*self.namespaces.values(), self.switch])
        self.leftover_details = removal.leftovers
        self.leftovers = [str(x) for x in removal.leftovers]
        release(self.prefix)
        self.down_s = time.monotonic() - start

    def _write_etc(self) -> None:
        """Per-host resolv.conf and hosts, bind-mounted by `ip netns exec` over /etc.

        Without them programs would ask the host's resolver (which no packet of a run may
        reach) and stall at start-up on reverse lookups.
        """
        try:
            NETNS_ETC.mkdir(exist_ok=True)
        except PermissionError:
            return  # unprivileged (user namespace) without /etc/netns: hosts keep /etc
        for role, ns in self.namespaces.items():
            etc = NETNS_ETC / ns
            etc.mkdir(parents=True, exist_ok=True)
            if role in INSIDE_ROLES:
                resolver = self.addresses.addr("resolver")
            else:
                resolver = self.addresses.addr("dns")
            (etc / "resolv.conf").write_text(f"nameserver {resolver}\noptions timeout:1\n")
            # Only the host's own name: apps must resolve servers through DNS.
            own = "" if role == "censor" else f"{self.addresses.addr(role)} {fqdn(role)} {role}\n"
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{own}")
