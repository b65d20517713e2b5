"""What every agent (a Python program an app or a tool runs inside a host) shares with the
harness: JSON lines on stdout, and a result line even when the agent crashes."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any


def emit(obj: dict[str, Any]) -> None:
    """One JSON line on stdout, flushed at once: the harness waits on these."""
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def ms_since(t0: float) -> float:
    """Milliseconds since a time.monotonic() reading."""
    return round((time.monotonic() - t0) * 1000.0, 3)


async def cancelled_by_sigterm(coro: Coroutine[Any, Any, None]) -> bool:
    """Run an agent's role; SIGTERM (the harness stopping it) cancels it. True when it was
    so cancelled, for the result to say why it ended early."""
    task = asyncio.ensure_future(coro)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await task
    except asyncio.CancelledError:
        return True
    return False


def run_and_report(coro: Coroutine[Any, Any, dict[str, Any]]) -> int:
    """Run the agent's work and emit its result; a crash still leaves a result line."""
    return work_and_report(lambda: asyncio.run(coro))


def work_and_report(work: Callable[[], dict[str, Any]]) -> int:
    """Do the agent's (blocking) work and emit its result; a crash still leaves a result."""
    try:
        result = work()
    except Exception as exc:
        logging.getLogger(__name__).exception("agent crashed")
        # A crashed agent is the harness failing, not the censor: a fault, retried.
        emit({"event": "result", "outcome": "harness-fault", "error": f"agent crashed: {exc!r}"})
        return 1
    emit(result)
    return 0
