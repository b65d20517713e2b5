"""Runs a scenario: every cell x trial in its own topology, each result written at once.

A trial's resources (namespaces, processes, censor rules) are acquired in an ExitStack, so
tear-down runs in reverse order whatever happens: an exception, Ctrl-C or SIGTERM.

A run can be resumed (`resume=True`): trials already in results.jsonl are skipped and the
rest appended, so an interrupted suite does not start over.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from censor_sims.capture import start_capture, stop_capture
from censor_sims.censor import Censor
from censor_sims.events import EventLog
from harness import registry
from harness.apps.base import App
from harness.pki import CA, make_ca
from harness.programs import require
from harness.report.loading import RunInputError, load_scenario_json, read_results_tolerant
from harness.results import TrialResult
from harness.scenario import Scenario
from harness.tools.base import Tool, ToolFailed
from harness.tools.tun_mode import load_tool
from harness.topology.addressing import AddressPool
from harness.topology.base import AddressInUse, Topology
from harness.topology.cleanup import STATE_DIR
from harness.topology.dns import DNSMASQ, start_dns
from harness.topology.docker import DockerTopology
from harness.topology.netns import NetnsTopology
from harness.topology.process import ProcessFailed, Supervisor
from harness.trial import TrialContext

BACKENDS: dict[str, type[Topology]] = {"netns": NetnsTopology, "docker": DockerTopology}


def new_run_id() -> str:
    return secrets.token_hex(3)


class Interrupted(KeyboardInterrupt):
    """SIGTERM turned into an exception so that tear-down runs as for Ctrl-C."""


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    def handler(signum: int, frame: object) -> None:
        raise Interrupted(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


@contextlib.contextmanager
def run_state(run_id: str, out_dir: Path) -> Iterator[None]:
    """A marker that this run is alive (its pid), so `gatecrash clean` leaves it alone."""
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    marker = STATE_DIR / f"{run_id}.json"
    marker.write_text(json.dumps({"pid": os.getpid(), "out": str(out_dir)}))
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def read_results(path: Path) -> list[TrialResult]:
    if not path.exists():
        return []
    return [TrialResult.model_validate_json(line) for line in path.read_text().splitlines() if line]


class ResumeError(Exception):
    """The directory holds no run that this scenario can continue; the message says why."""


# Scenario fields that change what a trial measures: a resumed run must not mix them.
BLOCK_ATTEMPTS = 16  # address blocks a trial tries before a taken block is an error

_TRIAL_FIELDS = (
    "call_seconds", "sip", "xmpp", "baresip", "signal_like", "whatsapp_like", "telegram_like",
    "webrtc", "capture",
)  # fmt: skip


def resume_problems(saved: Scenario, given: Scenario) -> list[str]:
    """Why `given` cannot continue a run of `saved` (empty when it can). `trials` may grow
    or shrink; expectations and thresholds only affect scoring."""
    problems = []
    saved_cells, given_cells = set(saved.cells()), set(given.cells())
    if saved_cells != given_cells:
        only_saved = sorted(saved_cells - given_cells)
        only_given = sorted(given_cells - saved_cells)
        problems.append(
            "the cells differ: "
            + "; ".join(
                part
                for part in (
                    only_saved and f"only in the saved run: {_cells_text(only_saved)}",
                    only_given and f"only in the given scenario: {_cells_text(only_given)}",
                )
                if part
            )
        )
    for name in sorted(set(saved.censors) & set(given.censors)):
        if saved.censors[name] != given.censors[name]:
            problems.append(f"censor {name!r} has other techniques than in the saved run")
    for field in _TRIAL_FIELDS:
        before, now = getattr(saved, field), getattr(given, field)
        if before != now:
            hint = " (give the first run's --call-seconds)" if field == "call_seconds" else ""
            problems.append(f"{field} differs: saved run {before!r}, given {now!r}{hint}")
    return problems


def _cells_text(cells: list[tuple[str, str, str]]) -> str:
    return ", ".join(" / ".join(cell) for cell in cells)


def load_resumable(scenario: Scenario, out_dir: Path) -> list[TrialResult]:
    """The trials recorded in out_dir, after checking `scenario` may continue that run."""
    if not (out_dir / "results.jsonl").exists() and not (out_dir / "scenario.json").exists():
        raise ResumeError(f"{out_dir}: no run to resume (no scenario.json, no results.jsonl)")
    try:
        saved = load_scenario_json(out_dir / "scenario.json")
    except RunInputError as exc:
        raise ResumeError(str(exc)) from None
    if problems := resume_problems(saved, scenario):
        raise ResumeError(
            f"{out_dir}: the scenario does not match the run being resumed: " + "; ".join(problems)
        )
    path = out_dir / "results.jsonl"
    return read_results_tolerant(path).results if path.exists() else []


class Runner:
    def __init__(
        self,
        scenario: Scenario,
        out_dir: Path,
        backend: str = "netns",
        run_id: str | None = None,
        on_trial: Callable[[TrialResult], None] | None = None,
        resume: bool = False,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        self.scenario, self.out_dir, self.backend = scenario, out_dir, BACKENDS[backend]
        self.run_id = run_id or new_run_id()
        self.on_trial = on_trial or (lambda r: None)
        self.pool = AddressPool()
        self.results_path = out_dir / "results.jsonl"
        self.resume = resume
        self.resume_warnings: list[str] = []
        self.apps: dict[str, App] = {n: registry.load(registry.APPS, n)() for n in scenario.apps}
        self.tools: dict[str, Tool] = {n: load_tool(n) for n in scenario.tools}

    def preflight(self) -> None:
        """Fail before anything starts when a program is missing (names the package)."""
        if self.backend is DockerTopology:
            from harness.images import ensure_images

            ensure_images()  # the node image holds the programs; built when missing
            return
        for app in self.apps.values():
            app.check_installed()
        for tool in self.tools.values():
            tool.check_installed()
        require(DNSMASQ, "dnsmasq-base")
        if self.scenario.capture:
            require("dumpcap", "tshark")

    def recorded(self) -> list[TrialResult]:
        """Trials already in results.jsonl (resume). A line cut short by a killed run is
        cut off the file, so appended lines start on a line of their own."""
        if not self.results_path.exists():
            return []
        read = read_results_tolerant(self.results_path)
        self.resume_warnings = read.warnings
        with self.results_path.open("r+b") as f:
            f.truncate(read.complete_bytes)
            if read.complete_bytes:
                f.seek(read.complete_bytes - 1)
                if f.read(1) != b"\n":
                    f.seek(0, os.SEEK_END)
                    f.write(b"\n")
        return read.results

    def run(self) -> list[TrialResult]:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if self.resume:
            load_resumable(self.scenario, self.out_dir)  # raises ResumeError on a mismatch
        results: list[TrialResult] = self.recorded() if self.resume else []
        done = {r.key for r in results}
        (self.out_dir / "scenario.json").write_text(self.scenario.model_dump_json(indent=2))
        self.preflight()
        ca = make_ca(self.out_dir / "pki")
        with terminate_as_interrupt(), run_state(self.run_id, self.out_dir):
            for censor, tool, app in self.scenario.cells():
                for trial in range(self.scenario.trials):
                    if (censor, tool, app, trial) in done:
                        continue
                    result = self.run_trial(censor, tool, app, trial, ca)
                    with self.results_path.open("a") as f:
                        f.write(result.model_dump_json() + "\n")
                    results.append(result)
                    self.on_trial(result)
        return results

    def _topology(self, stack: contextlib.ExitStack, tdir: Path) -> Topology:
        """The trial's hosts on a free address block. Docker networks are daemon-wide, so
        a block may be held by another run on the same daemon (or a crashed run's
        leftovers): this run sets it aside and takes the next one."""
        for attempt in range(1, BLOCK_ATTEMPTS + 1):
            addresses = self.pool.acquire()
            stack.callback(self.pool.release, addresses)
            try:
                return stack.enter_context(
                    self.backend(self.run_id, 0, addresses, tdir)  # type: ignore[arg-type]
                )
            except AddressInUse:  # the topology has already removed what it made
                self.pool.set_aside(addresses)
                if attempt == BLOCK_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def trial_dir(self, censor: str, tool: str, app: str, trial: int) -> Path:
        return self.out_dir / "trials" / censor / tool / app / str(trial)

    def run_trial(self, censor: str, tool: str, app: str, trial: int, ca: CA) -> TrialResult:
        started = time.monotonic()
        result = TrialResult(
            run_id=self.run_id,
            scenario=self.scenario.name,
            censor=censor,
            tool=tool,
            app=app,
            trial=trial,
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        tdir = self.trial_dir(censor, tool, app, trial)
        tdir.mkdir(parents=True, exist_ok=True)
        mark = [started]

        def lap(phase: str) -> None:
            now = time.monotonic()
            result.phases_ms[phase] = round((now - mark[0]) * 1000, 1)
            mark[0] = now

        try:
            with contextlib.ExitStack() as stack:
                topology = self._topology(stack, tdir)
                lap("topology")
                supervisor = Supervisor(tdir / "logs")
                stack.callback(supervisor.stop_all)
                ctx = TrialContext(
                    self.scenario, censor, tool, app, trial, topology, supervisor, tdir, ca
                )
                start_dns(topology, supervisor)
                self.apps[app].start_servers(ctx)
                lap("servers")
                if self.scenario.capture:
                    pcap = tdir / "censor.pcapng"
                    dumpcap = start_capture(topology["censor"], supervisor, pcap)
                    stack.callback(stop_capture, dumpcap)
                    result.logs["pcap"] = str(pcap)
                log = EventLog(tdir / "censor.jsonl")
                the_censor = Censor(
                    topology["censor"],
                    self.scenario.censors[censor],
                    topology.addresses.as_dict(),
                    log,
                    supervisor,
                    tdir,
                )
                stack.callback(the_censor.stop)
                the_censor.start()
                result.logs["censor"] = str(log.path)
                lap("censor")
                tool_started = time.monotonic()
                try:
                    ctx.endpoint = self.tools[tool].start(ctx)
                except (ToolFailed, ProcessFailed) as exc:
                    result.outcome, result.error = "tool-failure", str(exc)
                else:
                    result.tool_setup_ms = round((time.monotonic() - tool_started) * 1000, 1)
                    lap("tool")
                    self.apps[app].run(ctx, result)
                    lap("app")
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            result.outcome = "error"
            result.error = f"{type(exc).__name__}: {exc}"
            (tdir / "harness-error.txt").write_text(traceback.format_exc())
        lap("teardown")
        result.logs["dir"] = str(tdir)
        result.wall_s = round(time.monotonic() - started, 3)
        return result
