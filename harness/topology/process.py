"""Programs started inside a trial's hosts: logs kept per trial, readiness waited for, stopped.

Each program runs in its own process group so that stopping it also stops whatever it
forked; stdout and stderr go to files in the trial's directory (they are evidence).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_exponential

# Waits for a line or an event poll at 1, 2, 4, 8 ms, then every 10 ms: a server that is
# ready within a few milliseconds is seen at once, and a long wait (a call's result) costs
# no more CPU than fixed 10 ms polls; parallel trials' agents measure jitter meanwhile.
OUTPUT_POLL_FIRST_S, POLL_S = 0.001, 0.01


class Runs(Protocol):
    """What the supervisor needs of a host: how to wrap a command to run inside it."""

    name: str

    def wrap(self, argv: Sequence[str]) -> list[str]: ...


class ProcessFailed(RuntimeError):
    """A program exited, or never became ready; the message carries its log tail."""


class ManagedProcess:
    def __init__(
        self, name: str, host: str, argv: list[str], popen: subprocess.Popen, out: Path, err: Path
    ) -> None:
        self.name, self.host, self.argv, self.popen = name, host, argv, popen
        self.stdout_path, self.stderr_path = out, err
        self.started = time.monotonic()
        self._events: tuple[int, list[dict[str, Any]]] = (-1, [])  # (stdout size, parsed)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def stdout_text(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def tail(self, lines: int = 15) -> str:
        out = []
        for path in (self.stdout_path, self.stderr_path):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            if text:
                out.append(f"--- {path.name} ---\n" + "\n".join(text))
        return "\n".join(out)

    def json_events(self) -> list[dict[str, Any]]:
        """Lines of stdout that are JSON objects with an "event" key (agents' protocol).
        Parsed again only when stdout has grown: waits poll this every few milliseconds."""
        try:
            size = self.stdout_path.stat().st_size
        except OSError:
            size = 0
        if size != self._events[0]:
            self._events = (size, self._parse_events())
        return list(self._events[1])

    def _parse_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.stdout_text().splitlines():
            if line.startswith("{"):
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(obj, dict) and "event" in obj:
                    events.append(obj)
        return events

    def wait_until(
        self, check: Callable[[], Any], timeout: float, what: str, first_poll: float = POLL_S
    ) -> Any:
        """Poll `check` until it returns something truthy; fail early if the process dies."""

        def attempt() -> Any:
            value = check()
            if not value and not self.running():
                value = check()  # the last output may have landed just before exit
                if not value:
                    raise ProcessFailed(
                        f"{self.name} on {self.host} exited with {self.popen.returncode} "
                        f"before {what}\n{self.tail()}"
                    )
            return value

        retrying = Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_exponential(multiplier=first_poll / 2, max=POLL_S),
            retry=retry_if_result(lambda v: not v),
        )
        try:
            return retrying(attempt)
        except RetryError:
            raise ProcessFailed(
                f"{self.name} on {self.host}: no {what} within {timeout:.1f} s\n{self.tail()}"
            ) from None

    def wait_for_line(self, pattern: str, timeout: float = 10.0) -> re.Match[str]:
        regex = re.compile(pattern, re.MULTILINE)
        return self.wait_until(
            lambda: regex.search(self.stdout_text()) or regex.search(self._stderr_text()),
            timeout,
            f"output matching {pattern!r}",
            first_poll=OUTPUT_POLL_FIRST_S,
        )

    def wait_for_event(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        def find() -> dict[str, Any] | None:
            return next((e for e in self.json_events() if e.get("event") == event), None)

        return self.wait_until(find, timeout, f"event {event!r}", first_poll=OUTPUT_POLL_FIRST_S)

    def wait_exit(self, timeout: float) -> int | None:
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 2.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left after `grace` seconds."""
        if self.popen.poll() is None:
            _signal_group(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        _signal_group(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(grace)
        if self.popen.stdin:
            self.popen.stdin.close()

    def _stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Supervisor:
    """Starts programs in hosts and guarantees they are stopped (LIFO) when asked."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.processes: list[ManagedProcess] = []

    def start(
        self,
        host: Runs,
        name: str,
        argv: Sequence[str],
        env: dict[str, str] | None = None,
        keep_stdin: bool = False,
        cwd: Path | None = None,
    ) -> ManagedProcess:
        stem = f"{host.name}.{name}"
        out, err = self.log_dir / f"{stem}.out", self.log_dir / f"{stem}.err"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        wrapped = host.wrap(list(argv))
        with open(out, "wb") as fout, open(err, "wb") as ferr:
            popen = subprocess.Popen(
                wrapped,
                stdout=fout,
                stderr=ferr,
                stdin=subprocess.PIPE if keep_stdin else subprocess.DEVNULL,
                env=full_env,
                cwd=cwd,
                start_new_session=True,
            )
        proc = ManagedProcess(name, host.name, list(argv), popen, out, err)
        self.processes.append(proc)
        return proc

    def stop_all(self, grace: float = 2.0) -> None:
        """SIGTERM every process at once, then wait; survivors get SIGKILL after `grace`."""
        procs = list(reversed(self.processes))
        for proc in procs:
            if proc.running():
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(max(deadline - time.monotonic(), 0.01))
            proc.stop(grace=0.5)
        self.processes.clear()
