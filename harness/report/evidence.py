"""Why a trial failed, from what the run kept: outcome, censor events, log tails, pcap check.

A verdict is only as trustworthy as the evidence a reader can follow to it: for each trial
that did not simply work, this gathers the censor's actions during the trial (its
censor.jsonl), the last lines of the tool's and app's logs, and, where the trial kept a
pcap, the RTP figures recomputed from it beside the app's own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.results import TrialResult

TAIL_LINES = 8
MAX_LOGS = 6
# Setup chatter: every rule installed is listed once per trial and says nothing about a flow.
QUIET_ACTIONS = {"install"}


@dataclass
class PcapCheck:
    direction: str
    app: dict[str, Any]
    pcap: dict[str, Any]
    agree: bool
    why: str


@dataclass
class TrialEvidence:
    trial: TrialResult
    events: list[dict[str, Any]] = field(default_factory=list)  # censor actions, in order
    installed: int = 0  # rules the censor installed (not listed one by one)
    log_tails: dict[str, list[str]] = field(default_factory=dict)  # log name -> last lines
    pcap: list[PcapCheck] = field(default_factory=list)
    pcap_note: str | None = None  # why no pcap check was made, when one was wanted

    @property
    def disagreements(self) -> list[PcapCheck]:
        return [p for p in self.pcap if not p.agree]


def started_epoch(trial: TrialResult) -> float:
    return datetime.fromisoformat(trial.started_at).timestamp()


def read_events(path: Path) -> list[dict[str, Any]]:
    """The censor's events; a line cut short by a kill is skipped."""
    events = []
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def tail(path: Path, lines: int = TAIL_LINES) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


def _log_files(trial_dir: Path) -> list[Path]:
    """Non-empty logs of the trial, stderr first (where programs say what went wrong)."""
    logs = [p for p in sorted((trial_dir / "logs").glob("*")) if p.is_file() and p.stat().st_size]
    return sorted(logs, key=lambda p: (p.suffix != ".err", p.name))[:MAX_LOGS]


def check_pcap(trial: TrialResult) -> tuple[list[PcapCheck], str | None]:
    """RTP figures from the trial's pcap beside the app's, per direction."""
    pcap = trial.logs.get("pcap")
    if not pcap or trial.call is None or not trial.call.setup_ok:
        return [], None
    if trial.tool != "direct":
        return [], "media is inside the tool's tunnel: the pcap cannot be decoded as RTP"
    if not Path(pcap).is_file():
        return [], f"{pcap}: missing"
    from harness.programs import MissingProgram, require
    from harness.report.pcap_rtp import agrees, recompute

    try:
        require("tshark", "tshark")
        recomputed = recompute(Path(pcap))
    except MissingProgram as exc:
        return [], str(exc)
    except Exception as exc:  # a damaged pcap must not stop the report
        return [], f"{pcap}: cannot be read ({type(exc).__name__}: {exc})"
    checks = []
    for direction in ("up", "down"):
        app_stats = getattr(trial.call, direction)
        if app_stats is None or direction not in recomputed:
            continue
        app = app_stats.model_dump()
        ok, why = agrees(app, recomputed[direction])
        checks.append(PcapCheck(direction, app, recomputed[direction], ok, why))
    return checks, None


def gather(trial: TrialResult, with_pcap: bool = True) -> TrialEvidence:
    evidence = TrialEvidence(trial)
    trial_dir = Path(trial.logs.get("dir", ""))
    if trial_dir.is_dir():
        for event in read_events(trial_dir / "censor.jsonl"):
            if event.get("action") in QUIET_ACTIONS:
                evidence.installed += 1
            else:
                evidence.events.append(event)
        for log in _log_files(trial_dir):
            evidence.log_tails[log.name] = tail(log)
    if with_pcap:
        evidence.pcap, evidence.pcap_note = check_pcap(trial)
    return evidence


def wants_evidence(trial: TrialResult, cell_verdict: str) -> bool:
    """Trials a reader would ask "why?" about: failed ones, and all of a cell that is not
    simply working. An inconclusive cell's good trials are not in question: what it lacks
    is more of them, which its reason says."""
    return trial.outcome != "ok" or cell_verdict not in ("works", "inconclusive")


def describe_event(event: dict[str, Any], t0: float | None = None) -> str:
    """One line per censor event: when, which technique did what, to which flow."""
    when = ""
    if t0 is not None and isinstance(event.get("time"), int | float):
        when = f"+{event['time'] - t0:.3f}s "
    flow = event.get("flow")
    if isinstance(flow, dict):
        flow = f"{flow.get('src')}:{flow.get('sport')} -> {flow.get('dst')}:{flow.get('dport')}"
    skip = {"time", "technique", "action", "flow"}
    rest = ", ".join(f"{k}={v}" for k, v in event.items() if k not in skip)
    return (
        f"{when}{event.get('technique')} {event.get('action')}"
        + (f" [{flow}]" if flow else "")
        + (f" ({rest})" if rest else "")
    )
