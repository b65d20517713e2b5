"""`gatecrash doctor`: which topology backends work on this machine, and why not.

Kernel features are tried, not guessed: in a throwaway network namespace (as root, or inside
a user namespace when that is allowed) a veth pair gets an HTB qdisc and the filter table an
NFQUEUE rule; the host's own network is never touched.

For Docker, harness/docker_engine.py decides what is to be done; `python -m harness.doctor
docker-action|docker-remedy` prints that decision for scripts/setup.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from harness import docker_engine

# One shell run in a fresh network namespace; each probe prints "name ok" or "name fail".
_PROBE = """
probe() {
    name=$1; shift
    if "$@" >/dev/null 2>&1; then echo "$name ok"; else echo "$name fail"; fi
}
probe iptables iptables -w -t filter -L FORWARD
probe nfqueue iptables -w -A FORWARD -p udp --dport 9 -j NFQUEUE --queue-num 0 --queue-bypass
probe veth ip link add gcd0 type veth peer name gcd1
probe htb tc qdisc add dev gcd0 root handle 1: htb default 0
"""


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Backend:
    name: str
    checks: list[Check] = field(default_factory=list)

    @property
    def works(self) -> bool:
        return all(c.ok for c in self.checks)


def _run(argv: list[str], timeout: float = 20.0) -> subprocess.CompletedProcess[str] | None:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def privileges() -> tuple[Check, list[str]]:
    """Root, or a user namespace; returns the check and the prefix that gives a netns."""
    if os.geteuid() == 0:
        return Check("privileges", True, "running as root"), ["unshare", "-n"]
    proc = _run(["unshare", "-Urn", "true"])
    if proc is not None and proc.returncode == 0:
        return Check("privileges", True, "not root; user namespaces work"), ["unshare", "-Urn"]
    why = proc.stderr.strip() if proc else "unshare not found (util-linux)"
    return (
        Check(
            "privileges",
            False,
            f"not root and no user namespaces ({why}): run as root or set "
            "user.max_user_namespaces > 0",
        ),
        [],
    )


def kernel_checks(prefix: list[str]) -> list[Check]:
    missing = [b for b in ("ip", "tc", "iptables") if shutil.which(b) is None]
    if missing:
        return [Check("iproute2/iptables", False, f"{', '.join(missing)} not found: install "
                      "the Debian packages iproute2 and iptables")]  # fmt: skip
    if not prefix:
        return [Check("kernel features", False, "not tried: no namespace can be made")]
    version = _run(["iptables", "-V"])
    flavour = version.stdout.strip() if version else "?"
    proc = _run([*prefix, "sh", "-c", _PROBE])
    results = dict(line.split() for line in (proc.stdout if proc else "").splitlines() if line)
    explain = {
        "iptables": f"{flavour} in a fresh namespace",
        "nfqueue": "iptables NFQUEUE target (userspace DPI engine)",
        "veth": "veth pairs",
        "htb": "tc HTB qdisc (throttling techniques)",
    }
    return [
        Check(name, results.get(name) == "ok",
              text if results.get(name) == "ok" else f"not available: {text}")
        for name, text in explain.items()
    ]  # fmt: skip


def docker_checks() -> list[Check]:
    from harness.images import (
        BASE_IMAGE,
        DockerUnavailable,
        connect,
        has_image,
        missing_images,
        node_image,
    )

    checks = []
    cli = shutil.which("docker")
    missing_cli = ("not found: install the Debian package docker.io (`apt-get install "
                   "docker.io`; or docker-ce-cli from Docker's repository): programs run in "
                   "containers through `docker exec`")  # fmt: skip
    checks.append(Check("docker CLI", cli is not None, cli or missing_cli))
    try:
        client: Any = connect(timeout=10)
    except DockerUnavailable as exc:
        checks.append(Check("Docker daemon", False, str(exc)))
        return checks
    version = client.version()
    checks.append(Check("Docker daemon", True, f"Docker {version.get('Version')} "
                        f"(API {version.get('ApiVersion')})"))  # fmt: skip
    missing = missing_images(client)
    if not missing:
        checks.append(Check("images", True, f"{node_image()} present"))
    elif has_image(client, BASE_IMAGE) or shutil.which("debootstrap"):
        checks.append(Check("images", True, f"{', '.join(missing)} missing; the first run "
                            "(or `gatecrash images build`) builds it"))  # fmt: skip
    else:
        checks.append(Check("images", True, f"{', '.join(missing)} missing; building needs "
                            f"{BASE_IMAGE} from a registry (or install debootstrap)"))  # fmt: skip
    return checks


def diagnose() -> list[Backend]:
    priv, prefix = privileges()
    netns = Backend("netns", [priv, *kernel_checks(prefix)])
    return [netns, Backend("docker", docker_checks())]


def print_diagnosis(backends: list[Backend], console: Any) -> None:
    from rich.table import Table

    table = Table(title="gatecrash doctor")
    for col in ("backend", "check", "", "detail"):
        table.add_column(col)
    for backend in backends:
        for check in backend.checks:
            mark = "[green]ok[/]" if check.ok else "[red]no[/]"
            table.add_row(backend.name, check.name, mark, check.detail)
    console.print(table)
    for backend in backends:
        verdict = "[green]works[/]" if backend.works else "[red]does not work[/]"
        failed = [c.name for c in backend.checks if not c.ok]
        why = f" (fix: {', '.join(failed)})" if failed else ""
        console.print(f"--backend {backend.name}: {verdict}{why}", highlight=False)


def main(argv: list[str]) -> int:
    """`python -m harness.doctor docker-action|docker-remedy`: for scripts/setup."""
    if argv == ["docker-action"]:
        print(docker_engine.docker_action(docker_engine.docker_facts()))
        return 0
    if argv == ["docker-remedy"]:
        print(docker_engine.docker_remedy(docker_engine.docker_facts()))
        return 0
    print("usage: python -m harness.doctor docker-action|docker-remedy", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
