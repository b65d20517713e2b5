"""The machine's network namespaces as `ip netns` keeps them: which exist, which
processes live in each, and stopping those processes. Shared by the netns backend's
tear-down and `gatecrash clean`."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

NS_PREFIX = "gc-"
NETNS_ETC = Path("/etc/netns")
NETNS_RUN = Path("/run/netns")


def list_namespaces() -> list[str]:
    if not NETNS_RUN.is_dir():
        return []
    return sorted(p.name for p in NETNS_RUN.iterdir())


def pids_by_namespace(namespaces: list[str]) -> dict[str, list[int]]:
    """The processes in each named namespace, from one pass over /proc (what `ip netns
    pids` does for one name: a process is in the namespace whose file its ns/net matches)."""
    wanted: dict[tuple[int, int], str] = {}
    for ns in namespaces:
        with contextlib.suppress(OSError):
            st = os.stat(NETNS_RUN / ns)
            wanted[(st.st_dev, st.st_ino)] = ns
    found: dict[str, list[int]] = {ns: [] for ns in namespaces}
    if not wanted:
        return found
    entering = {f"ip\0netns\0exec\0{ns}\0".encode(): ns for ns in namespaces}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            st = os.stat(f"/proc/{entry.name}/ns/net")
        except OSError:  # gone meanwhile, or a kernel thread's
            continue
        ns = wanted.get((st.st_dev, st.st_ino)) or _entering(entry.name, entering)
        if ns is not None:
            found[ns].append(int(entry.name))
    return found


def _entering(pid: str, entering: dict[bytes, str]) -> str | None:
    """The namespace an `ip netns exec NS ...` that has not joined it yet is about to
    enter: a process started just before tear-down would otherwise slip in after the scan."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            head = f.read(256)
    except OSError:
        return None
    return next((ns for prefix, ns in entering.items() if head.startswith(prefix)), None)


def kill_namespace_processes(namespaces: list[str], grace: float = 1.0) -> int:
    """SIGTERM every process living in the namespaces, SIGKILL the survivors.
    Returns how many processes there were."""
    pids = [pid for found in pids_by_namespace(namespaces).values() for pid in found]
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
