"""The policy scorecard: does a censor's block achieve its aim, and at what cost to others?

Per censor with techniques, from the scored cells: effectiveness (the share of its target
apps the `direct` control finds blocked), evasion (which target cells each tool restores:
the control blocked, the tool cell works) and collateral damage (each bystander app's
`direct` verdict under the censor, its loss against the same app's `direct` cell on the
open network, and the censor rule its event log shows acting on those trials). Cells that
are inconclusive or invalid are counted apart: never as blocked, never as working. The
sentence is built only from these figures, so a policy reader can quote it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.report.controls import CONTROL_TOOL
from harness.report.evidence import QUIET_ACTIONS, read_events
from harness.report.scorecard_model import (
    CensorRule,
    Collateral,
    Effectiveness,
    Evasion,
    ScorecardCard,
    ToolEvasion,
)
from harness.report.summary_model import SummaryCell
from harness.results import TrialResult

BLOCKED = ("blocked", "signalling-blocked", "media-blocked")
UNDECIDED = ("inconclusive", "invalid")
# Bookkeeping the censor logs about itself, not an action on a flow.
SELF_ACTIONS = {*QUIET_ACTIONS, "start", "stop", "counters-unavailable", "delay-method"}
SELF_TECHNIQUES = {"engine", "censor"}

Cells = Mapping[tuple[str, str, str], SummaryCell]


def _open_censor(technique_counts: Mapping[str, int]) -> str | None:
    """The baseline: the censor named `open` if it has no techniques, else the first one
    without techniques."""
    if technique_counts.get("open", 1) == 0:
        return "open"
    return next((c for c, n in technique_counts.items() if n == 0), None)


def _acted(event: Mapping[str, Any]) -> bool:
    """An action of a technique on traffic: an engine decision, or a kernel rule's counter
    that matched packets of the trial (a rule that matched nothing did nothing)."""
    if event.get("technique") in SELF_TECHNIQUES or event.get("action") in SELF_ACTIONS:
        return False
    return bool(event.get("packets")) if event.get("action") == "matched" else True


def censor_rules(trials: Sequence[TrialResult]) -> list[CensorRule]:
    """What the censor did to these trials, from their event logs: (technique, rule,
    analyzer protocols), most frequent first, with how many events and trials. Events are
    read by key: each technique logs the fields it has (censor.jsonl is free-form)."""
    events: Counter[tuple[str, str, str]] = Counter()
    trials_hit: Counter[tuple[str, str, str]] = Counter()
    for trial in trials:
        path = trial.logs.get("censor") or str(Path(trial.logs.get("dir", "")) / "censor.jsonl")
        seen = set()
        for event in read_events(Path(path)):
            if not _acted(event):
                continue
            technique = str(event.get("technique"))
            rule = str(event.get("rule") or event.get("purpose") or event.get("action"))
            analyzer = event.get("analyzer")
            props = ", ".join(sorted(analyzer)) if isinstance(analyzer, dict) else ""
            key = (technique, rule, props)
            events[key] += 1
            seen.add(key)
        trials_hit.update(seen)
    return [
        CensorRule(technique=t, rule=r, analyzer=a, events=n, trials=trials_hit[(t, r, a)])
        for (t, r, a), n in events.most_common()
    ]


def _diff(a: float | None, b: float | None, digits: int) -> float | None:
    return None if a is None or b is None else round(a - b, digits)


def _workload_figures(cell: SummaryCell) -> dict[str, float | None]:
    """A workload app's quality figures (web, download, dns), compared as censored / open."""
    return {"duration": cell.setup_ms_p50, "throughput": cell.throughput_mbps_median}


def _workload_ratios(cell: SummaryCell, base: SummaryCell) -> dict[str, float]:
    """A workload's quality figures under the censor over the open network's, e.g.
    {"duration": 2.3} for pages that took 2.3 times as long to load."""
    if cell.kind != "workload":
        return {}
    ratios = {}
    opened = _workload_figures(base)
    for label, value in _workload_figures(cell).items():
        open_value = opened[label]
        if value is not None and open_value:
            ratios[label] = round(value / open_value, 2)
    return ratios


def _delivery(cell: SummaryCell) -> float | None:
    """Messages delivered, or a workload's items completed: the share that got through."""
    return cell.completeness if cell.kind == "workload" else cell.delivery_ratio


def _status(verdict: str | None) -> str:
    if verdict is None:
        return "not run"
    if verdict in UNDECIDED:
        return "undecided"
    return "blocked" if verdict in BLOCKED else "not blocked"


def _collateral(
    app: str,
    cell: SummaryCell | None,
    base: SummaryCell | None,
    trials: Sequence[TrialResult],
) -> Collateral:
    """One bystander: its direct verdict, what it lost against the open network, and the
    rule that did it (only when it was harmed)."""
    verdict = cell.verdict if cell else None
    open_verdict = base.verdict if base else None
    harmed: bool | None = verdict in BLOCKED or verdict == "degraded"
    if verdict is None or verdict in UNDECIDED or (harmed and open_verdict in UNDECIDED):
        harmed = None  # not measured well enough to say either way
    elif harmed and open_verdict not in (None, "works"):
        harmed = False  # it fails on the open network too: not this censor's doing
    return Collateral(
        app=app,
        kind=cell.kind if cell else None,
        verdict=verdict,
        open_verdict=open_verdict,
        harmed=harmed,
        cssr_points=_diff(cell.cssr, base.cssr, 4) if cell and base else None,
        mos=_diff(cell.mos_median, base.mos_median, 3) if cell and base else None,
        delivery=_diff(_delivery(cell), _delivery(base), 4) if cell and base else None,
        workload_ratio=_workload_ratios(cell, base) if cell and base else {},
        rules=censor_rules(trials) if harmed else [],
    )


def _effectiveness(targets: list[str], status: Mapping[str, str]) -> Effectiveness:
    blocked = [a for a in targets if status[a] == "blocked"]
    decided = [a for a in targets if status[a] in ("blocked", "not blocked")]
    return Effectiveness(
        blocked=len(blocked),
        decided=len(decided),
        undecided=[a for a in targets if status[a] == "undecided"],
        share=round(len(blocked) / len(decided), 4) if decided else None,
        blocked_apps=blocked,
        not_blocked_apps=[a for a in decided if a not in blocked],
    )


def _evasion(censor: str, blocked: list[str], tools: list[str], cells: Cells) -> Evasion:
    by_tool = {}
    for tool in (t for t in tools if t != CONTROL_TOOL):
        verdicts = {a: c.verdict if (c := cells.get((censor, tool, a))) else None for a in blocked}
        by_tool[tool] = ToolEvasion(
            restored=[a for a in blocked if verdicts[a] == "works"],
            undecided=[a for a in blocked if verdicts[a] in UNDECIDED],
        )
    restored_any = [a for a in blocked if any(a in t.restored for t in by_tool.values())]
    return Evasion(
        tools=by_tool,
        restored_by_any=restored_any,
        share=round(len(restored_any) / len(blocked), 4) if blocked else None,
        tools_restoring_all=sorted(
            t for t, v in by_tool.items() if blocked and len(v.restored) == len(blocked)
        ),
    )


def _censor_card(
    censor: str,
    targets: list[str],
    apps: list[str],
    tools: list[str],
    cells: Cells,
    baseline: str | None,
    trials: Mapping[tuple[str, str, str], list[TrialResult]],
) -> ScorecardCard:
    control = {app: cells.get((censor, CONTROL_TOOL, app)) for app in apps}
    status = {app: _status(c.verdict if c else None) for app, c in control.items()}
    effectiveness = _effectiveness(targets, status)
    bystanders = [a for a in apps if a not in targets]
    collateral = [
        _collateral(
            app,
            control[app],
            cells.get((baseline, CONTROL_TOOL, app)) if baseline else None,
            trials.get((censor, CONTROL_TOOL, app), []),
        )
        for app in bystanders
    ]
    card = ScorecardCard(
        censor=censor,
        targets=targets,
        bystanders=bystanders,
        baseline=baseline,
        effectiveness=effectiveness,
        evasion=_evasion(censor, effectiveness.blocked_apps, tools, cells),
        collateral=collateral,
        sentence="",  # built from the figures above, next
    )
    card.sentence = sentence(card)
    return card


def _names(apps: Sequence[str]) -> str:
    return ", ".join(apps) if apps else "none"


# What a cell's success ratio and delivered share count, by kind: CSSR is a call's word; a
# workload's success is the whole workload completed, its share the items done.
SUCCESS_WORD = {"workload": "completed"}
SHARE_WORD = {"workload": "completeness"}


def loss_figures(entry: Collateral) -> list[str]:
    """A bystander's verdict and its losses against the open network, in words that fit its
    kind (a page load is not a call: 'completed -100 points', not 'CSSR')."""
    kind = entry.kind or ""
    parts = [str(entry.verdict)]
    if entry.cssr_points:
        parts.append(f"{SUCCESS_WORD.get(kind, 'CSSR')} {entry.cssr_points * 100:+.0f} points")
    if entry.mos:
        parts.append(f"MOS {entry.mos:+.2f}")
    if entry.delivery:
        parts.append(f"{SHARE_WORD.get(kind, 'delivery')} {entry.delivery * 100:+.0f} points")
    parts += [f"{label} x{ratio:g}" for label, ratio in entry.workload_ratio.items()]
    return parts


def _loss_text(entry: Collateral) -> str:
    parts = loss_figures(entry)
    if entry.rules:
        parts.append(f"by {entry.rules[0].technique}")
    return ", ".join(parts)


def sentence(card: ScorecardCard) -> str:
    """One quotable sentence from measured figures only; undecided figures are named as
    such, never claimed."""
    censor, eff, ev = card.censor, card.effectiveness, card.evasion
    targets = card.targets
    parts = []
    if not targets:
        parts.append(f"{censor} declares no target among these apps")
    elif not eff.decided:
        parts.append(f"{censor}'s effect on its targets ({_names(targets)}) is undecided")
    else:
        which = [_names(eff.blocked_apps)] if eff.blocked_apps else []
        if eff.not_blocked_apps:
            which.append(f"not {_names(eff.not_blocked_apps)}")
        if eff.undecided:
            which.append(f"{_names(eff.undecided)} undecided")
        parts.append(
            f"{censor} blocked {eff.blocked}/{eff.decided} target apps directly"
            f" ({'; '.join(which)})"
        )
        if eff.blocked and ev.tools:
            parts.append(
                f"{len(ev.tools_restoring_all)} of {len(ev.tools)} tools restored every"
                f" blocked target ({len(ev.restored_by_any)}/{eff.blocked} restored by at"
                " least one)"
            )
    bystanders = card.bystanders
    harmed = [e for e in card.collateral if e.harmed]
    undecided = [e.app for e in card.collateral if e.harmed is None]
    if harmed:
        broke = "; ".join(f"{e.app} ({_loss_text(e)})" for e in harmed)
        parts.append(f"it also broke: {broke}")
    elif bystanders and len(undecided) < len(bystanders):
        unharmed = [e.app for e in card.collateral if e.harmed is False]
        parts.append(f"no bystander was harmed ({_names(unharmed)})")
    if undecided:
        parts.append(f"the effect on {_names(undecided)} is undecided")
    if len(parts) == 1:
        return parts[0] + "."
    return ", ".join(parts[:-1]) + ", and " + parts[-1] + "."


def build_scorecard(
    cells: Sequence[SummaryCell],
    technique_counts: Mapping[str, int],
    targets: Mapping[str, list[str]],
    results: Sequence[TrialResult],
) -> list[ScorecardCard]:
    """One card per censor with techniques, in the order censors appear in the cells."""
    by_key = {c.key: c for c in cells}
    apps = list(dict.fromkeys(c.app for c in cells))
    tools = list(dict.fromkeys(c.tool for c in cells))
    censors = list(dict.fromkeys(c.censor for c in cells))
    trials: dict[tuple[str, str, str], list[TrialResult]] = {}
    for result in results:
        if not result.is_fault:
            trials.setdefault(result.cell, []).append(result)
    baseline = _open_censor(technique_counts)
    return [
        _censor_card(
            censor,
            [a for a in targets.get(censor, []) if a in apps],
            apps,
            tools,
            by_key,
            baseline,
            trials,
        )
        for censor in censors
        if technique_counts.get(censor, 0) > 0
    ]
