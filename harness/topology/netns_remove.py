"""Removing netns objects without stopping at the first one that will not go.

Used by a trial's tear-down and by `gatecrash clean`. Processes in the namespaces are killed,
the namespaces deleted (retried with back-off: `ip netns del` peels one mount off a busy
namespace file per try) and their /etc/netns directories removed. What stays is a Leftover,
never an exception. The veths live inside the namespaces (none is ever in the host's), so
they go with them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from harness.topology.leftovers import Leftover, one_line
from harness.topology.namespaces import (
    NETNS_ETC,
    NETNS_RUN,
    _alive,
    kill_namespace_processes,
    list_namespaces,
    pids_by_namespace,
)

DELETE_ATTEMPTS = 5  # waits 0.05, 0.1, 0.2, 0.4 s between them
SURVIVOR_PATIENCE_S = 2.0


@dataclass
class NetnsRemoval:
    namespaces: list[str] = field(default_factory=list)  # deleted
    processes: int = 0  # found in them and killed
    files: list[str] = field(default_factory=list)  # /etc/netns directories removed
    leftovers: list[Leftover] = field(default_factory=list)


def remove_namespaces(names: list[str]) -> NetnsRemoval:
    """Kill the processes in `names`, delete the namespaces and their /etc/netns files.

    A namespace whose processes survive SIGKILL (uninterruptible sleep) is kept: deleting
    its name would hide those processes from a later `gatecrash clean`."""
    out = NetnsRemoval()
    existing = set(list_namespaces())
    present = [ns for ns in names if ns in existing]
    try:
        out.processes = kill_namespace_processes(present)
    except (OSError, subprocess.SubprocessError) as exc:
        out.leftovers.append(Leftover("process", "in " + " ".join(present), one_line(str(exc))))
    held = survivors(present) if out.processes else {}
    for ns, pids in held.items():
        listed = " ".join(map(str, pids))
        out.leftovers.append(
            Leftover(
                "namespace",
                ns,
                f"processes {listed} survived SIGKILL (kept so `gatecrash clean` finds them)",
                f"kill -9 {listed} && ip netns del {ns}",
            )
        )
    failed = delete_namespaces([ns for ns in present if ns not in held])
    out.namespaces = [ns for ns in present if ns not in held and ns not in failed]
    for ns, reason in failed.items():
        out.leftovers.append(
            Leftover("namespace", ns, reason, f"umount -R {NETNS_RUN / ns}; ip netns del {ns}")
        )
    for ns in names:
        removed, leftover = remove_etc(ns)
        out.files += removed
        out.leftovers += leftover
    return out


def survivors(namespaces: list[str], patience: float = SURVIVOR_PATIENCE_S) -> dict[str, list[int]]:
    """Processes still in the namespaces once SIGKILL has had `patience` seconds to work
    (an exiting process takes a moment; one forked meanwhile gets its own SIGKILL)."""
    deadline = time.monotonic() + patience
    while True:
        found = pids_by_namespace(namespaces)
        held = {
            ns: pids for ns, all_pids in found.items() if (pids := list(filter(_alive, all_pids)))
        }
        if not held or time.monotonic() > deadline:
            return held
        for pid in (p for pids in held.values() for p in pids):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def delete_namespaces(names: list[str]) -> dict[str, str]:
    """`ip netns del` each name, again with back-off while any is still listed. Returns
    those that stayed, each with ip's last word on it."""
    reasons: dict[str, str] = {}

    def attempt() -> list[str]:
        todo = [ns for ns in names if ns in set(list_namespaces())]
        if not todo:
            return []
        script = "".join(f"netns del {ns}\n" for ns in todo)
        try:
            argv = ["ip", "-force", "-batch", "-"]
            proc = subprocess.run(
                argv, input=script, capture_output=True, text=True, timeout=30, check=False
            )
            errors = proc.stderr.splitlines()
        except (OSError, subprocess.SubprocessError) as exc:
            errors = [f'"{ns}": {exc}' for ns in todo]
        for line in errors:
            for ns in todo:
                if f'/{ns}"' in line or f'"{ns}"' in line:
                    reasons[ns] = one_line(line)
        existing = set(list_namespaces())
        return [ns for ns in todo if ns in existing]

    retrying = Retrying(
        stop=stop_after_attempt(DELETE_ATTEMPTS),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_result(bool),
        retry_error_callback=lambda state: state.outcome.result(),
    )
    left = retrying(attempt)
    return {ns: reasons.get(ns, "still listed after `ip netns del`") for ns in left}


def remove_etc(ns: str) -> tuple[list[str], list[Leftover]]:
    """The namespace's /etc/netns directory (resolv.conf, hosts)."""
    path = NETNS_ETC / ns
    if not path.exists():
        return [], []
    errors: list[str] = []
    shutil.rmtree(path, onerror=lambda fn, p, exc: errors.append(f"{p}: {exc[1]}"))
    if path.exists():
        reason = one_line(errors[0] if errors else "still there after removal")
        return [], [Leftover("file", str(path), reason, f"rm -rf {path}")]
    return [str(path)], []
