"""The docker backend: one container per host, two Docker networks, the censor between them.

Layout of one trial (same roles and addresses as the netns backend):
    client, resolver --[network gc-RUN-SLOT-in]-- censor --[gc-RUN-SLOT-out]-- voip, chat, ...
Every host's default route points at the censor's leg on its side and the censor (NET_ADMIN,
ip_forward on) has no default route, so every inside<->outside packet crosses its FORWARD
path and nothing can be routed off the machine.

Why the networks are not `internal`: Docker's rules for an internal network drop every
bridged packet whose source or destination lies outside that network's own subnet
(`! -s SUBNET -o BRIDGE -j DROP`), and with br_netfilter on (Docker loads it) that includes
the packets the censor routes between the two sides: a client->voip packet dies on the
inside bridge. So each network is an ordinary bridge with `inhibit_ipv4` (the host gets no
address on it, hence no route into it and no way for a container to reach the host or
beyond through it) and no masquerading. The host's firewall stays as Docker leaves it.

The harness's code runs inside the containers from bind mounts at the same paths as on the
host (checkout and interpreter read-only, the run's output directory read-write), so agents,
configs and logs keep their paths. Programs run through `docker exec`; a small relay
(`python -m harness.topology.docker exec ...`) stands between the supervisor and `docker
exec`, because the exec client does not pass signals on: the relay forwards SIGTERM to the
program's process group inside the container (SIGKILL if it lingers) and keeps the program's
output flowing until it exits.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from harness.topology.addressing import ALL_ROLES, INSIDE_ROLES, OUTSIDE_ROLES, dynamic_range
from harness.topology.base import (
    WIRE_GSO_MAX,
    AddressInUse,
    Host,
    Topology,
    fqdn,
    run_checked,
)
from harness.topology.docker_labels import (
    PID_LABEL,
    ROLE_LABEL,
    RUN_LABEL,
    SLOT_LABEL,
    TRIAL_LABEL,
)
from harness.topology.leftovers import Leftover

NAME_PREFIX = "gc-"
REPO = Path(__file__).resolve().parents[2]
# A program that ignores SIGTERM this long gets SIGKILL: well before the supervisor's
# own SIGKILL (after 2 s, or 0.5 s in stop_all's second round) ends the relay.
KILL_AFTER_S = 1.0


def container_name(run_id: str, slot: int, role: str) -> str:
    return f"{NAME_PREFIX}{run_id}-{slot}-{role}"


class DockerHost(Host):
    """A host that is a container: commands go through `docker exec`."""

    container: str = ""

    def run(
        self, argv: Sequence[str], check: bool = True, input: str | None = None, timeout=30.0
    ) -> subprocess.CompletedProcess[str]:
        """Short commands skip the relay: nothing to signal, and one process less."""
        exec_argv = ["docker", "exec", *(["-i"] if input is not None else []), self.container]
        return run_checked([*exec_argv, *argv], check=check, input=input, timeout=timeout)


class DockerTopology(Topology):
    backend = "docker"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.image = ""
        self.networks = {side: f"{self.prefix}-{side[:3]}" for side in ("inside", "outside")}
        self.containers = {r: container_name(self.run_id, self.slot, r) for r in ALL_ROLES}
        relay = [sys.executable, "-m", "harness.topology.docker", "exec"]
        for role, name in self.containers.items():
            host = DockerHost(role, self.addresses.addr(role), [*relay, name, "--"])
            host.container = name
            self.hosts[role] = host
        self.labels = {
            RUN_LABEL: self.run_id,
            SLOT_LABEL: str(self.slot),
            TRIAL_LABEL: str(self.workdir),
            PID_LABEL: str(os.getpid()),
        }
        self.up_s = self.down_s = 0.0
        self.leftover_details: list[Leftover] = []
        self._client: Any = None

    # -- up ---------------------------------------------------------------------------
    def up(self) -> None:
        from harness.images import ImagesMissing, connect, has_image, node_image

        start = time.monotonic()
        self._client = client = connect()
        self.image = node_image()
        if not has_image(client, self.image):
            raise ImagesMissing(
                f"image {self.image} is missing: run `gatecrash images build` (a `gatecrash "
                "run --backend docker` builds it first)"
            )
        etc = self._write_etc()
        mounts, tmpfs = shared_mounts(self.run_dir())

        def network(side: str) -> None:
            net = self.addresses.inside if side == "inside" else self.addresses.outside
            self._create_network(self.networks[side], net, side)

        def host(role: str) -> None:  # each host's steps in a row, the hosts side by side
            self._create_container(role, mounts, tmpfs, etc[role]).start()
            self._configure(role)

        with ThreadPoolExecutor(len(ALL_ROLES)) as pool:
            list(pool.map(network, self.networks))
            list(pool.map(host, ALL_ROLES))
        self.up_s = time.monotonic() - start

    def run_dir(self) -> Path:
        """What containers may write: the run's output directory (from the run's marker in
        /run/gatecrash, written by the runner) or else the trial directory alone."""
        import json

        from harness.topology.state import STATE_DIR

        workdir = self.workdir.resolve()
        with contextlib.suppress(OSError, ValueError, KeyError):
            out = Path(json.loads((STATE_DIR / f"{self.run_id}.json").read_text())["out"])
            if workdir.is_relative_to(out.resolve()):
                return out.resolve()
        return workdir

    def _create_network(self, name: str, net: ipaddress.IPv4Network, side: str) -> None:
        """A bridge with no host address (inhibit_ipv4) and no NAT: see the module doc.
        The IPAM gateway (the block's last address) is only bookkeeping: it sits on no
        interface, and no role uses it. Docker hands out addresses of its own choice only
        from the upper half (`iprange`), where no role's fixed address lies: a container of
        someone else's attached while the topology is still being built (a debugging shell,
        a monitoring agent) would otherwise take the first free address, often the censor's,
        and fail the trial."""
        from docker.errors import APIError

        subnet = str(net)
        try:
            self._create_bridge(name, subnet, str(net.broadcast_address - 1), side)
        except APIError as exc:
            if "overlap" not in str(exc):
                raise
            raise AddressInUse(
                f"Docker network for {subnet} not created: {self._holder(subnet)} already "
                "uses that block. If it is left from a crashed run, `gatecrash clean` removes "
                "it; a run tries the next block (runs side by side on one daemon do so)."
            ) from None

    def _holder(self, subnet: str) -> str:
        want = ipaddress.ip_network(subnet)
        for net in self._client.networks.list():
            for pool in (net.attrs.get("IPAM") or {}).get("Config") or []:
                with contextlib.suppress(ValueError, KeyError):
                    if ipaddress.ip_network(pool["Subnet"]).overlaps(want):
                        run = (net.attrs.get("Labels") or {}).get(RUN_LABEL)
                        return f"network {net.name}" + (f" (gatecrash run {run})" if run else "")
        return "another network"

    def _create_bridge(self, name: str, subnet: str, gateway: str, side: str) -> None:
        from docker.types import IPAMConfig, IPAMPool

        dynamic = dynamic_range(ipaddress.ip_network(subnet))
        pool = IPAMPool(subnet=subnet, iprange=str(dynamic), gateway=gateway)
        self._client.networks.create(
            name,
            driver="bridge",
            ipam=IPAMConfig(pool_configs=[pool]),
            options={
                "com.docker.network.bridge.inhibit_ipv4": "true",
                "com.docker.network.bridge.enable_ip_masquerade": "false",
                "com.docker.network.bridge.enable_icc": "true",
            },
            labels={**self.labels, ROLE_LABEL: f"net-{side}"},
            check_duplicate=True,
        )

    def _create_container(self, role: str, mounts: list, tmpfs: dict, etc: Path) -> Any:
        from docker.types import Mount

        side = "outside" if role in OUTSIDE_ROLES else "inside"  # censor: inside, then outside
        network = self.networks[side]
        addr = self.addresses.addr(role, side)
        api = self._client.api
        kwargs: dict[str, Any] = {}
        if role == "censor":
            kwargs["sysctls"] = {
                "net.ipv4.ip_forward": "1",
                "net.ipv4.conf.all.rp_filter": "0",
                "net.ipv4.conf.default.rp_filter": "0",
                "net.netfilter.nf_conntrack_acct": "1",
            }
        if role == "client" and Path("/dev/net/tun").exists():
            kwargs["devices"] = ["/dev/net/tun:/dev/net/tun:rwm"]
        host_config = api.create_host_config(
            init=True,
            cap_add=["NET_ADMIN", "NET_RAW"],
            network_mode=network,
            mounts=[
                *mounts,
                Mount("/etc/resolv.conf", str(etc / "resolv.conf"), type="bind", read_only=True),
                Mount("/etc/hosts", str(etc / "hosts"), type="bind", read_only=True),
            ],
            tmpfs=tmpfs,
            **kwargs,
        )
        if role == "proxy":
            # A TUN-mode tool's exit turns on forwarding at run time (`sysctl -w`), as on
            # netns: /proc/sys writable here only (what `--security-opt systempaths=unconfined`
            # does; the SDK has no field for it).
            host_config.update(MaskedPaths=[], ReadonlyPaths=[])
        created = api.create_container(
            self.image,
            ["sleep", "infinity"],
            name=self.containers[role],
            hostname=role,
            labels={**self.labels, ROLE_LABEL: role},
            host_config=host_config,
            networking_config=api.create_networking_config(
                {network: api.create_endpoint_config(ipv4_address=addr)}
            ),
        )
        container = self._client.containers.get(created["Id"])
        if role == "censor":
            self._client.networks.get(self.networks["outside"]).connect(
                container, ipv4_address=self.addresses.addr("censor", "outside")
            )
        return container

    def _configure(self, role: str) -> None:
        """Routes: hosts to the censor; the censor's legs named as on netns, no default."""
        if role == "censor":
            script = ["ip route del default 2>/dev/null || true"]
            for side in ("inside", "outside"):
                addr = self.addresses.addr("censor", side)
                script += [
                    f'dev=$(ip -o -4 addr show to {addr} | cut -d" " -f2)',
                    f'ip link set "$dev" down && ip link set "$dev" name {side}',
                    f"ip link set {side} up",
                ]
        else:
            script = [
                f"ip link set eth0 gso_max_size {WIRE_GSO_MAX}",
                f"ip route replace default via {self.addresses.gateway(role)} dev eth0",
            ]
        code, out = self._client.containers.get(self.containers[role]).exec_run(
            ["sh", "-ec", "\n".join(script)]
        )
        if code != 0:
            raise RuntimeError(f"configuring {self.containers[role]} failed: {out.decode()}")

    def _write_etc(self) -> dict[str, Path]:
        """Per-host resolv.conf and hosts (bind-mounted over Docker's own): the run's resolver
        and only the host's own name, exactly as the netns backend writes them."""
        out = {}
        for role in ALL_ROLES:
            etc = self.workdir.resolve() / "docker-etc" / role
            etc.mkdir(parents=True, exist_ok=True)
            resolver = self.addresses.addr("resolver" if role in INSIDE_ROLES else "dns")
            (etc / "resolv.conf").write_text(f"nameserver {resolver}\noptions timeout:1\n")
            own = "" if role == "censor" else f"{self.addresses.addr(role)} {fqdn(role)} {role}\n"
            (etc / "hosts").write_text(f"127.0.0.1 localhost\n{own}")
            out[role] = etc
        return out

    # -- down -------------------------------------------------------------------------
    def down(self) -> None:
        """Remove this trial's containers and networks, found by label (so an object whose
        creation was interrupted is found too), each on its own and retried; what cannot
        go is listed in `leftovers`, keeps its labels for `gatecrash clean`, never raises."""
        from harness.images import DockerUnavailable, connect
        from harness.topology.docker_remove import remove_labelled

        start = time.monotonic()
        try:
            client = self._client
            if client is None:
                try:
                    client = connect()
                except DockerUnavailable:
                    return  # up() never reached the daemon: nothing can have been made
            removal = remove_labelled(client, {RUN_LABEL: self.run_id, SLOT_LABEL: str(self.slot)},
                                      trial=str(self.workdir))  # fmt: skip
            self.leftover_details = removal.leftovers
            self.leftovers = [str(x) for x in removal.leftovers]
        finally:
            self.down_s = time.monotonic() - start


# Never mounted over the image's own: a virtualenv of Debian's python3 has its base in /usr,
# and the image's python3 (same Debian release) stands in for it.
SYSTEM_DIRS = {Path("/"), Path("/usr"), Path("/bin"), Path("/lib"), Path("/opt")}


def shared_mounts(run_dir: Path) -> tuple[list[Any], dict[str, str]]:
    """Bind mounts at the host's own paths: checkout and Python read-only, the run's
    directory read-write; the current directory as an empty tmpfs when no mount holds it
    (relative paths are resolved from it)."""
    from docker.types import Mount

    read_only = {REPO, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
                 Path(sys.executable).resolve().parent.parent} - SYSTEM_DIRS  # fmt: skip
    paths: dict[Path, bool] = {}
    for path in sorted(read_only, key=lambda p: len(p.parts)):
        if not any(path.is_relative_to(p) for p in paths):
            paths[path] = True
    paths[run_dir] = False
    mounts = [Mount(str(p), str(p), type="bind", read_only=ro) for p, ro in paths.items()]
    cwd = Path.cwd()
    tmpfs = {} if any(cwd.is_relative_to(p) for p in paths) else {str(cwd): "size=1m"}
    return mounts, tmpfs


# -- the exec relay (runs on the host, one per supervised program) --------------------------
_HOST_ONLY = {"PATH", "HOME", "HOSTNAME", "PWD", "OLDPWD", "SHELL", "SHLVL", "USER", "LOGNAME",
              "TERM", "TMPDIR", "TMP", "TEMP", "MAIL", "_", "LANG", "LANGUAGE", "VIRTUAL_ENV",
              "COLUMNS", "LINES", "PYTHONHOME"}  # fmt: skip
_HOST_ONLY_PREFIXES = ("LC_", "LD_", "XDG_", "SSH_", "DOCKER_", "PYTEST_", "GITHUB_", "RUNNER_")
_INNER = 'echo $$ > "$0"; exec "$@"'  # the program's pid (= its process group) for signals
_KILL = (
    'i=0; while [ ! -s "$1" ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; '
    '/bin/kill -"$0" -- -"$(cat "$1")"'
)  # procps kill: dash's builtin has no process groups


def passed_env(environ: dict[str, str]) -> list[str]:
    """Names of the variables a program gets inside the container: the harness's and the
    caller's, not the host's paths and session (those would be wrong in the container)."""
    return sorted(
        k for k in environ if k not in _HOST_ONLY and not k.startswith(_HOST_ONLY_PREFIXES)
    )


def relay(container: str, argv: list[str]) -> int:
    """Run argv in the container; SIGTERM/SIGINT/SIGHUP go to the program's process group
    there, SIGKILL follows after KILL_AFTER_S. Exits with the program's status."""
    pidfile = f"/run/gc-exec-{secrets.token_hex(6)}.pid"
    env_flags = [f"--env={name}" for name in passed_env(dict(os.environ))]
    exec_argv = ["docker", "exec", "-i", "-w", os.getcwd(), *env_flags, container,
                 "sh", "-c", _INNER, pidfile, *argv]  # fmt: skip
    # Its own session: the supervisor's group signal must not kill the exec client (the
    # program's last words after SIGTERM come back through it).
    child = subprocess.Popen(exec_argv, start_new_session=True)
    signalled = threading.Event()

    def send(sig: str) -> None:
        subprocess.run(["docker", "exec", container, "sh", "-c", _KILL, sig, pidfile],
                       capture_output=True, timeout=30, check=False)  # fmt: skip

    def escalate() -> None:
        deadline = time.monotonic() + KILL_AFTER_S
        send("TERM")
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(max(deadline - time.monotonic(), 0.01))
            return
        send("KILL")

    def on_signal(signum: int, frame: object) -> None:
        if signalled.is_set():
            threading.Thread(target=send, args=("KILL",), daemon=True).start()
            return
        signalled.set()
        threading.Thread(target=escalate, daemon=True).start()

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, on_signal)
    while True:
        try:
            return child.wait()
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            continue


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[0] != "exec" or argv[2] != "--":
        print("usage: python -m harness.topology.docker exec CONTAINER -- ARGV...",
              file=sys.stderr)  # fmt: skip
        return 2
    return relay(argv[1], argv[3:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
