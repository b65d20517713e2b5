"""The machine's network namespaces as `ip netns` keeps them: which exist, which
processes live in each, and stopping those processes. Shared by the netns backend's
tear-down and `gatecrash clean`."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

NS_PREFIX = "gc-"
NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")


def list_namespaces() -> list[str]:
    if not NETNS_RUN.is_dir():
        return []
    return sorted(p.name for p in NETNS_RUN.iterdir())


def namespace_pids(ns: str) -> list[int]:
    proc = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def kill_namespace_processes(namespaces: list[str], grace: float = 1.0) -> int:
    """SIGTERM every process living in the namespaces, SIGKILL the survivors.
    Returns how many processes there were."""
    existing = set(list_namespaces())
    pids = [pid for ns in namespaces if ns in existing for pid in namespace_pids(ns)]
    found = len(pids)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        alive = []
        for pid in pids:
            try:
                os.kill(pid, sig)
                alive.append(pid)
            except ProcessLookupError:
                pass
        if not alive or sig == signal.SIGKILL:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in alive):
            time.sleep(0.01)
        pids = [p for p in alive if _alive(p)]
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own unreaped child) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False
