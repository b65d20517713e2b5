"""The terminal view: a progress bar while trials run, a score table at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report.baseline import CellChange
from harness.report.controls import CONTROL_NOTE
from harness.report.summary_model import Summary, SummaryCell

VERDICT_STYLE = {
    "works": "bold green",
    "degraded": "yellow",
    "blocked": "bold red",
    "signalling-blocked": "bold red",
    "media-blocked": "red",
    "inconclusive": "cyan",
    "invalid": "magenta",
}
FAULTS_CAPTION = "faults: trials not scored / attempts that ended in a harness fault"


def _fmt(value: Any, spec: str = ".0f", unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}{unit}"


def _uplift(cell: SummaryCell) -> str:
    """Tool minus direct control; a trailing * marks an uncensored control."""
    uplift = cell.uplift
    if uplift is None:
        return "-"
    text = f"{_fmt(uplift.cssr_points, '+.2f')}/{_fmt(uplift.mos, '+.2f')}"
    return text + "*" if cell.control_uncensored else text


def _faults(cell: SummaryCell) -> str:
    """Trials lost to harness faults / all fault attempts (retries included); "-" for none
    (a summary of version 1 has none)."""
    return f"{cell.faults}/{cell.fault_attempts}" if cell.fault_attempts else "-"


def score_table(summary: Summary) -> Table:
    table = Table(title=f"gatecrash: {summary.scenario} (run {summary.run_id})")
    for col, justify in (
        ("censor", "left"), ("tool", "left"), ("app", "left"), ("verdict", "left"),
        ("CSSR [95% CI]", "right"), ("setup p50/p95 ms", "right"), ("MOS", "right"),
        ("loss %", "right"), ("delivery", "right"), ("uplift CSSR/MOS", "right"),
        ("trials", "right"), ("faults", "right"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    if any(c.fault_attempts for c in summary.cells):
        table.caption = FAULTS_CAPTION
    for c in summary.cells:
        lo, hi = c.cssr_ci
        style = VERDICT_STYLE.get(c.verdict, "")
        table.add_row(
            c.censor,
            c.tool,
            c.app,
            f"[{style}]{c.verdict}[/]",
            f"{c.cssr:.2f} [{lo:.2f}, {hi:.2f}]",
            f"{_fmt(c.setup_ms_p50)}/{_fmt(c.setup_ms_p95)}",
            _fmt(c.mos_median, ".2f"),
            _fmt(c.loss_pct_median, ".1f"),
            _fmt(c.delivery_ratio, ".0%") if c.kind == "message" else "-",
            _uplift(c),
            str(c.trials),
            _faults(c),
        )
    return table


def print_faults(summary: Summary, console: Console) -> None:
    """The run's harness faults apart from the verdicts: how many, of which kinds."""
    faults = summary.faults
    if not faults.attempts:
        return
    kinds = ", ".join(f"{kind} {count}" for kind, count in faults.by_kind.items())
    console.print(
        "[magenta]harness faults[/] (the harness's own failures, never censorship): "
        f"{faults.attempts} attempt(s) ({escape(kinds)}); {faults.trials} trial(s) "
        "ended in one and were not scored",
        highlight=False,
        soft_wrap=True,
    )


def print_summary(summary: Summary, console: Console) -> None:
    from harness.report.scorecard_view import print_scorecard

    console.print(score_table(summary))
    print_scorecard(summary, console)
    for c in summary.cells:
        if c.verdict != "works":
            console.print(f"[dim]{c.censor} / {c.tool} / {c.app}:[/] {c.reason}", highlight=False)
    print_faults(summary, console)
    for c in summary.cells:
        if c.control_uncensored:
            console.print(
                f"[magenta]*[/] {c.censor} / {c.tool} / {c.app}: {CONTROL_NOTE}",
                highlight=False,
                soft_wrap=True,
            )
    for exp in summary.expectations:
        mark = "[green]ok[/]" if exp.met else "[bold red]FAILED[/]"
        console.print(
            f"expect {exp.censor} / {exp.tool} / {exp.app}: "
            f"{exp.expected} -> got {exp.verdict} {mark}"
        )


GATE_STYLE = {
    "regressed": "bold red",
    "flaky-looking": "yellow",
    "invalid": "magenta",
    "not-decided": "cyan",
    "improved": "green",
    "new": "cyan",
    "missing": "cyan",
}


def gate_table(changes: list[CellChange], title: str) -> Table:
    table = Table(title=title)
    for col in ("cell", "status", "baseline", "this run", "what changed"):
        table.add_column(col)
    for ch in changes:
        style = GATE_STYLE.get(ch.status, "")
        table.add_row(
            escape(ch.label),
            f"[{style}]{ch.status}[/]",
            escape(ch.before),
            escape(ch.after),
            escape("; ".join(ch.reasons)),
        )
    return table


def print_gate(changes: list[CellChange], console: Console, title: str) -> None:
    """The table of changes, then one line per regressed cell (what CI logs show)."""
    if not changes:
        console.print(f"{title}: no cell changed", highlight=False)
        return
    console.print(gate_table(changes, title))
    for ch in changes:
        if ch.fails:
            console.print(
                f"[bold red]REGRESSED[/] {escape(ch.label)}: {escape('; '.join(ch.reasons))}",
                highlight=False,
                soft_wrap=True,
            )
        elif ch.status in ("flaky-looking", "not-decided"):
            style = GATE_STYLE[ch.status]
            console.print(
                f"[{style}]{ch.status}[/] {escape(ch.label)}: {escape('; '.join(ch.reasons))}",
                highlight=False,
                soft_wrap=True,
            )
    undecided = sum(ch.status == "not-decided" for ch in changes)
    if undecided:
        console.print(
            f"[cyan]{undecided} cell(s) not decided[/]: neither a regression nor a pass; "
            "run more trials to decide them",
            highlight=False,
        )


def print_evidence(evidence: list, console: Console, per_cell: int = 1) -> None:
    """Why cells did not simply work: per cell, its first failing trial's outcome, the
    censor's actions on it and any pcap disagreement (the HTML report has all of it)."""
    from harness.report.evidence import describe_event, started_epoch

    shown: dict[tuple[str, str, str], int] = {}
    for ev in evidence:
        cell = ev.trial.cell
        if shown.get(cell, 0) >= per_cell:
            continue
        shown[cell] = shown.get(cell, 0) + 1
        t = ev.trial
        line = f"[bold]{' / '.join(cell)} #{t.trial}[/]: {escape(t.outcome)}"
        if t.error:
            line += f" — {escape(t.error.splitlines()[0])}"
        elif t.call and t.call.mos is not None:
            dirs = (t.call.up, t.call.down)
            loss = "/".join(_fmt(d.loss_pct if d else None, ".1f") for d in dirs)
            line += f", MOS {t.call.mos:.2f}, loss up/down {loss} %"
        console.print(line, highlight=False, soft_wrap=True)
        t0 = started_epoch(t)
        # Counters that stayed at zero say the rule did not touch this trial's flows.
        events = [e for e in ev.events if e.get("packets") != 0]
        for event in events[:3]:
            console.print(f"    censor: {escape(describe_event(event, t0))}", highlight=False)
        if len(events) > 3:
            console.print(f"    censor: ... {len(events) - 3} more events", highlight=False)
        if ev.pcap and not ev.disagreements:
            dirs = ", ".join(c.direction for c in ev.pcap)
            console.print(f"    pcap: loss and jitter agree with the app ({dirs})", highlight=False)
        for check in ev.disagreements:
            console.print(
                f"    [bold red]pcap disagrees[/] ({check.direction}): {escape(check.why)}",
                highlight=False,
            )
