"""Runs a scenario: every cell x trial in its own topology, each result written at once.

A trial's resources (namespaces, processes, censor rules) are acquired in an ExitStack, so
tear-down runs in reverse order whatever happens: an exception, Ctrl-C or SIGTERM.

A run can be resumed (`resume=True`): trials already in results.jsonl are skipped and the
rest appended, so an interrupted suite does not start over.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import secrets
import signal
import threading
import time
import traceback
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

from censor_sims.capture import start_capture, stop_capture
from censor_sims.censor import Censor
from censor_sims.events import EventLog
from harness import registry
from harness.apps.base import App
from harness.faults import (
    ClientPacketCounter,
    agent_fault,
    fault_from_exception,
    left_behind,
    tool_failure_is_fault,
)
from harness.paths import inside
from harness.pki import CA, make_ca
from harness.programs import require
from harness.report.loading import RunInputError, load_scenario_json, read_results_tolerant
from harness.results import FAULT_OUTCOME, FaultPhase, TrialResult, final_attempts
from harness.scenario import Scenario
from harness.tools.base import Tool, ToolFailed
from harness.tools.variant import build_tool, variant_changes
from harness.topology.addressing import AddressPool
from harness.topology.base import AddressInUse, Topology
from harness.topology.cleanup import STATE_DIR
from harness.topology.dns import DNSMASQ, start_dns
from harness.topology.docker import DockerTopology
from harness.topology.netns import NetnsTopology
from harness.topology.process import ProcessFailed, Supervisor
from harness.trial import TrialContext

BACKENDS: dict[str, type[Topology]] = {"netns": NetnsTopology, "docker": DockerTopology}
DEFAULT_RETRIES = 2  # attempts after a harness fault, per trial
TrialKey = tuple[str, str, str, int]  # (censor, tool, app, trial)
# Called at the start of each phase of each attempt: tests make one phase fail through it.
FaultHook = Callable[[FaultPhase, TrialKey, int], None]


TRIAL_MEMORY = 256 * 2**20  # bytes a trial may need: ~2x the RSS of a SIP trial's programs


def default_jobs() -> int:
    """Trials side by side: a trial mostly waits on its call, so two per core (on 2 cores,
    benchmarks/throughput.py measured 3.45x the serial rate with no verdict changed and
    MOS equal; four per core still changed no verdict but added up to 2 ms of jitter and
    100 ms of setup time), and no more than the available memory holds."""
    import psutil

    by_memory = psutil.virtual_memory().available // TRIAL_MEMORY
    return int(max(1, min(2 * (os.cpu_count() or 1), by_memory)))


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


class ResumeError(Exception):
    """The directory holds no run that this scenario can continue; the message says why."""


BLOCK_ATTEMPTS = 16  # address blocks a trial tries before a taken block is an error


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
    problems += variant_changes(saved, given)  # a tool's options or build changed
    for field in saved.trial_fields():
        before, now = getattr(saved, field), getattr(given, field)
        if before != now:
            hint = " (give the first run's --call-seconds)" if field == "call_seconds" else ""
            problems.append(f"{field} differs: saved run {before!r}, given {now!r}{hint}")
    return problems


def _cells_text(cells: list[tuple[str, str, str]]) -> str:
    return ", ".join(" / ".join(cell) for cell in cells)


def check_resumable(scenario: Scenario, out_dir: Path) -> None:
    """Raise ResumeError unless out_dir holds a run that `scenario` may continue."""
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


class Runner:
    """Runs the trials of a scenario, `jobs` side by side, each attempt on its own address
    block and names; a trial whose attempt ends in a harness fault is tried again, up to
    `retries` times, and every attempt is recorded."""

    def __init__(
        self,
        scenario: Scenario,
        out_dir: Path,
        backend: str = "netns",
        run_id: str | None = None,
        on_trial: Callable[[TrialResult], None] | None = None,
        resume: bool = False,
        jobs: int = 1,
        retries: int = DEFAULT_RETRIES,
        only: Collection[TrialKey] | None = None,
        fault_hook: FaultHook | None = None,
        on_retry: Callable[[TrialResult], None] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}; valid: {', '.join(BACKENDS)}")
        if jobs < 1 or retries < 0:
            raise ValueError(f"need jobs >= 1 and retries >= 0, got {jobs} and {retries}")
        self.scenario, self.out_dir, self.backend = scenario, out_dir, BACKENDS[backend]
        self.run_id = run_id or new_run_id()
        self.on_trial = on_trial or (lambda r: None)  # a trial's last attempt
        self.on_retry = on_retry or (lambda r: None)  # an attempt that ended in a fault, retried
        self.pool = AddressPool()
        self.results_path = out_dir / "results.jsonl"
        self.resume = resume
        self.resume_warnings: list[str] = []
        self._recorded: list[TrialResult] | None = None
        self.jobs, self.retries = jobs, retries
        self.only = None if only is None else set(only)
        self.fault_hook = fault_hook or (lambda phase, key, attempt: None)
        # For preflight only: each trial gets instances of its own, since apps and tools
        # keep a trial's state (passwords, agents) on themselves and trials run side by side.
        self.apps: dict[str, App] = {n: registry.app_class(n)() for n in scenario.apps}
        self.tools: dict[str, Tool] = {n: build_tool(scenario, n) for n in scenario.tool_variants()}
        self._slots = itertools.count()  # every attempt of the run gets its own names
        self._slot_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stopping = threading.Event()
        self._active: dict[int, Supervisor] = {}  # slot -> the running attempt's processes

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
        """The trials of the run being resumed, read once: the saved scenario is checked
        against this one (ResumeError), and a line cut short by a killed run is cut off the
        file, so appended lines start on a line of their own."""
        if self._recorded is None:
            check_resumable(self.scenario, self.out_dir)
            self._recorded = self._read_and_mend()
        return self._recorded

    def _read_and_mend(self) -> list[TrialResult]:
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

    def trial_keys(self) -> list[TrialKey]:
        """Every trial of the scenario (or of `only`), cell by cell in file order."""
        keys = self.scenario.trial_keys()
        return [k for k in keys if self.only is None or k in self.only]

    def run(self) -> list[TrialResult]:
        """Every attempt's record, in the order they ended (a resumed run's first)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        results: list[TrialResult] = list(self.recorded()) if self.resume else []
        # A trial is done when it has a record that is not a fault; one that ended in
        # faults is tried again on resume (the harness may have been fixed meanwhile).
        done = {r.key for r in final_attempts(results) if not r.is_fault}
        (self.out_dir / "scenario.json").write_text(self.scenario.model_dump_json(indent=2))
        self.preflight()
        ca = make_ca(self.out_dir / "pki")
        pending = [key for key in self.trial_keys() if key not in done]
        next_attempt = {r.key: r.attempt + 1 for r in results}
        with terminate_as_interrupt(), run_state(self.run_id, self.out_dir):
            self._run_all(pending, next_attempt, ca, results)
        return results

    def _run_all(
        self,
        pending: list[TrialKey],
        next_attempt: dict[TrialKey, int],
        ca: CA,
        results: list[TrialResult],
    ) -> None:
        """Trials on `jobs` worker threads; the main thread records each attempt as it ends
        and, on Ctrl-C or SIGTERM, stops every running trial and waits for its tear-down."""
        queue = iter(pending)
        running: dict[Future[list[TrialResult]], TrialKey] = {}
        with ThreadPoolExecutor(self.jobs, thread_name_prefix="trial") as workers:
            try:
                for key in itertools.islice(queue, self.jobs):
                    running[workers.submit(self._trial, key, next_attempt.get(key, 0), ca)] = key
                while running:
                    finished, _ = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                    for future in finished:
                        del running[future]
                        results.extend(future.result())
                        key = next(queue, None)
                        if key is not None:
                            attempt = next_attempt.get(key, 0)
                            running[workers.submit(self._trial, key, attempt, ca)] = key
            except BaseException:
                self._stop_running(list(running))
                raise

    def _stop_running(self, futures: list[Future[list[TrialResult]]]) -> None:
        """Ends every running trial: its programs are stopped so that its worker unwinds
        (the next phase boundary raises), and its tear-down runs before we return."""
        self._stopping.set()
        for future in futures:
            future.cancel()
        for supervisor in list(self._active.values()):
            with contextlib.suppress(Exception):
                supervisor.stop_all(grace=0.5)
        wait(futures, timeout=120)

    def _trial(self, key: TrialKey, first_attempt: int, ca: CA) -> list[TrialResult]:
        """One trial: attempts until one is not a harness fault or the retries are used up.
        Each attempt is appended to results.jsonl and reported as soon as it ends."""
        attempts = []
        last = first_attempt + self.retries
        for attempt in range(first_attempt, last + 1):
            result = self.run_trial(*key, ca, attempt=attempt)
            if self._stopping.is_set():
                break  # an interrupted attempt says nothing: not recorded
            again = result.is_fault and attempt < last
            with self._write_lock:
                with self.results_path.open("a") as f:
                    f.write(result.model_dump_json() + "\n")
                (self.on_retry if again else self.on_trial)(result)
            attempts.append(result)
            if not again:
                break
        return attempts

    def _new_slot(self) -> int:
        with self._slot_lock:
            return next(self._slots)

    def _topology(
        self,
        stack: contextlib.ExitStack,
        tdir: Path,
        slot: int,
        result: TrialResult,
        on_hosts: Callable[[Topology], None] | None = None,
    ) -> Topology:
        """The trial's hosts on a free address block. Docker networks are daemon-wide, so
        a block may be held by another run on the same daemon (or a crashed run's
        leftovers): this run sets it aside and takes the next one."""
        for attempt in range(1, BLOCK_ATTEMPTS + 1):
            addresses = self.pool.acquire()
            stack.callback(self.pool.release, addresses)
            topology = self.backend(self.run_id, slot, addresses, tdir)  # type: ignore[arg-type]
            topology.on_hosts = on_hosts
            try:
                return stack.enter_context(topology)
            except AddressInUse as exc:  # the topology has removed what it could
                result.leftovers += left_behind(exc)
                self.pool.set_aside(addresses)
                if attempt == BLOCK_ATTEMPTS:
                    raise
        raise AssertionError("unreachable")

    def trial_dir(self, censor: str, tool: str, app: str, trial: int, attempt: int = 0) -> Path:
        """Where a trial's logs go; a retried attempt gets a directory of its own."""
        leaf = str(trial) if attempt == 0 else f"{trial}.attempt{attempt}"
        return inside(self.out_dir, "trials", censor, tool, app, leaf)

    def run_trial(
        self, censor: str, tool: str, app: str, trial: int, ca: CA, attempt: int = 0
    ) -> TrialResult:
        started = time.monotonic()
        result = TrialResult(
            run_id=self.run_id,
            scenario=self.scenario.name,
            censor=censor,
            tool=tool,
            app=app,
            trial=trial,
            attempt=attempt,
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        key = (censor, tool, app, trial)
        tdir = self.trial_dir(censor, tool, app, trial, attempt)
        tdir.mkdir(parents=True, exist_ok=True)
        slot = self._new_slot()
        mark = [started]
        phase: list[FaultPhase] = ["topology"]

        def enter(next_phase: FaultPhase) -> None:
            """Close the current phase's lap, and start `next_phase` (a stop point)."""
            now = time.monotonic()
            if next_phase != "topology":
                result.phases_ms[phase[0]] = round((now - mark[0]) * 1000, 1)
            mark[0] = now
            phase[0] = next_phase
            if self._stopping.is_set():
                raise Interrupted("the run is stopping")
            if next_phase != "teardown":
                self.fault_hook(next_phase, key, attempt)

        hosts: list[Topology] = []  # the attempt's topology, once it is up
        try:
            with contextlib.ExitStack() as stack:
                try:
                    self._phases(stack, result, key, ca, tdir, slot, enter, hosts)
                except Exception as exc:  # ends the attempt; tear-down follows
                    self._record_fault(result, phase[0], exc, tdir)
                enter("teardown")
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # tear-down itself failed: what stays is labelled
            (tdir / "teardown-error.txt").write_text(traceback.format_exc())
            result.leftovers.append(f"tear-down failed: {type(exc).__name__}: {exc}")
        result.phases_ms["teardown"] = round((time.monotonic() - mark[0]) * 1000, 1)
        for topology in hosts:
            result.leftovers += list(getattr(topology, "leftovers", []))
        result.logs["dir"] = str(tdir)
        result.wall_s = round(time.monotonic() - started, 3)
        return result

    def _phases(
        self,
        stack: contextlib.ExitStack,
        result: TrialResult,
        key: TrialKey,
        ca: CA,
        tdir: Path,
        slot: int,
        enter: Callable[[FaultPhase], None],
        hosts: list[Topology],
    ) -> None:
        """Topology, servers, censor, tool and app of one attempt; everything they start
        is put on `stack` to be torn down in reverse order."""
        censor, tool, app, trial = key
        enter("topology")
        supervisor = Supervisor(tdir / "logs")
        the_app = registry.app_class(app)()
        contexts: list[TrialContext] = []

        def warm_up(topology: Topology) -> None:
            """As soon as the hosts exist: the app's agents load while the links come up."""
            ctx = TrialContext(self.scenario, censor, tool, app, trial, topology, supervisor,
                               tdir, ca)  # fmt: skip
            contexts.append(ctx)
            the_app.warm_up(ctx)

        try:
            topology = self._topology(stack, tdir, slot, result, on_hosts=warm_up)
        except BaseException:
            supervisor.stop_all()  # agents started before the set-up failed
            raise
        hosts.append(topology)
        enter("servers")
        stack.callback(supervisor.stop_all)
        self._active[slot] = supervisor
        stack.callback(self._active.pop, slot, None)
        (ctx,) = contexts
        the_tool = build_tool(self.scenario, tool)
        result.tool_version = the_tool.version()  # an own build says which one it is
        start_dns(topology, supervisor)
        the_app.start_servers(ctx)
        enter("censor")
        self._start_censor(stack, result, topology, supervisor, censor, tdir)
        counter = self._client_counter(topology, censor)
        enter("tool")
        tool_started = time.monotonic()
        try:
            ctx.endpoint = the_tool.start(ctx)
        except (ToolFailed, ProcessFailed) as exc:
            self._tool_failed(result, exc, censor, counter)
            return
        result.tool_setup_ms = round((time.monotonic() - tool_started) * 1000, 1)
        enter("app")
        the_app.run(ctx, result)
        if result.outcome == FAULT_OUTCOME and result.fault is None:
            result.fault = agent_fault(result.error)

    def _start_censor(
        self,
        stack: contextlib.ExitStack,
        result: TrialResult,
        topology: Topology,
        supervisor: Supervisor,
        censor: str,
        tdir: Path,
    ) -> None:
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

    def _client_counter(self, topology: Topology, censor: str) -> ClientPacketCounter | None:
        """Under a censor with techniques: count what the client sends into the censor, to
        tell a tool the censor stopped from one that never tried."""
        if not self.scenario.censors[censor]:
            return None
        counter = ClientPacketCounter(topology["censor"], topology.addr("client"))
        counter.install()
        return counter

    def _tool_failed(
        self, result: TrialResult, exc: Exception, censor: str, counter: ClientPacketCounter | None
    ) -> None:
        packets = counter.since_install() if counter else None
        if tool_failure_is_fault(bool(self.scenario.censors[censor]), packets):
            result.outcome, result.error = FAULT_OUTCOME, str(exc)
            result.fault = fault_from_exception("tool", exc)
            why = "no technique" if counter is None else "no client packet reached the censor"
            result.fault.detail = f"{why}: {result.fault.detail}"
        else:
            result.outcome, result.error = "tool-failure", str(exc)

    def _record_fault(
        self, result: TrialResult, phase: FaultPhase, exc: Exception, tdir: Path
    ) -> None:
        """An exception is the harness failing in `phase`, never censorship: what the
        network did to an app, the app reports as an outcome."""
        (tdir / "harness-error.txt").write_text(traceback.format_exc())
        result.outcome, result.error = FAULT_OUTCOME, f"{type(exc).__name__}: {exc}"
        result.fault = fault_from_exception(phase, exc)
        result.leftovers += left_behind(exc)  # a topology that failed half-way up
