"""Who is alive: run markers and topology owner files in /run/gatecrash.

`gatecrash clean` removes only what no live process owns. A run's marker names its pid
(written by the runner); a topology built outside a run (tests, benchmarks) has no marker,
so each netns topology also leaves an owner file naming the process that built it, as the
Docker backend's objects carry a pid label.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

STATE_DIR = Path("/run/gatecrash")
OWNERS_DIR = STATE_DIR / "topologies"


def pid_alive(pid: int | str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    return True


def live_runs() -> set[str]:
    """Runs whose marker names a live pid."""
    live: set[str] = set()
    if not STATE_DIR.is_dir():
        return live
    for marker in STATE_DIR.glob("*.json"):
        try:
            pid = int(json.loads(marker.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if pid_alive(pid):
            live.add(marker.stem)
    return live


def owner_path(prefix: str) -> Path:
    """The owner file of the objects named `prefix`-ROLE (prefix: gc-RUN-SLOT)."""
    return OWNERS_DIR / f"{prefix}.pid"


def claim(prefix: str) -> None:
    """Record that this process owns the objects named `prefix`-*. Best effort: without a
    writable /run (unprivileged) `clean` falls back on run markers alone."""
    with contextlib.suppress(OSError):
        OWNERS_DIR.mkdir(parents=True, exist_ok=True)
        owner_path(prefix).write_text(str(os.getpid()))


def release(prefix: str) -> None:
    with contextlib.suppress(OSError):
        owner_path(prefix).unlink(missing_ok=True)


def owner_alive(prefix: str) -> bool:
    try:
        return pid_alive(owner_path(prefix).read_text().strip())
    except OSError:
        return False
