"""The scorecard as a reader sees it: a short table for the terminal, a section for the
HTML page. Both show only what summary.json's `scorecard` holds."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape as html_escape

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from harness.report.scorecard import loss_figures
from harness.report.scorecard_model import Collateral, ScorecardCard
from harness.report.summary_model import Summary


def _share(count: int, of: int) -> str:
    return f"{count}/{of}" if of else "-"


def effectiveness_text(card: ScorecardCard) -> str:
    eff = card.effectiveness
    if not card.targets:
        return "no targets"
    text = _share(eff.blocked, eff.decided)
    if eff.blocked_apps:
        text += f" ({', '.join(eff.blocked_apps)})"
    if eff.undecided:
        text += f", undecided: {', '.join(eff.undecided)}"
    return text


def evasion_text(card: ScorecardCard) -> str:
    ev, blocked = card.evasion, card.effectiveness.blocked
    if not blocked:
        return "-"
    per_tool = ", ".join(f"{t} {len(v.restored)}/{blocked}" for t, v in ev.tools.items())
    return f"{len(ev.restored_by_any)}/{blocked} by any" + (f" ({per_tool})" if per_tool else "")


def collateral_text(entry: Collateral) -> str:
    """'xmpp: blocked, CSSR -100 points [voip-signalling: flow recognised as sip (sip)]'."""
    if entry.harmed is None:
        return f"{entry.app}: {entry.verdict or 'not run'} (undecided)"
    if not entry.harmed:
        # Within the works limits, yet a workload may have slowed: its ratios say by how much.
        ratios = "".join(f", {k} x{v:g}" for k, v in entry.workload_ratio.items())
        return f"{entry.app}: {entry.verdict}, not harmed{ratios}"
    text = f"{entry.app}: {', '.join(loss_figures(entry))}"
    if entry.rules:
        rule = entry.rules[0]
        analyzer = f" ({rule.analyzer})" if rule.analyzer else ""
        text += f" [{rule.technique}: {rule.rule}{analyzer}]"
    return text


def scorecard_table(cards: Sequence[ScorecardCard]) -> Table:
    table = Table(title="scorecard: aim (targets) and cost (bystanders), direct control")
    for col in ("censor", "targets blocked", "restored by tools", "bystanders"):
        table.add_column(col)
    for card in cards:
        table.add_row(
            escape(card.censor),
            escape(effectiveness_text(card)),
            escape(evasion_text(card)),
            escape("\n".join(collateral_text(e) for e in card.collateral) or "-"),
        )
    return table


def print_scorecard(summary: Summary, console: Console) -> None:
    """The table, then each censor's sentence; nothing when no censor had techniques."""
    cards = summary.scorecard
    if not cards:
        return
    console.print(scorecard_table(cards))
    for card in cards:  # each sentence starts with its censor's name
        console.print(escape(card.sentence), highlight=False, soft_wrap=True)


def scorecard_section(summary: Summary) -> str:
    """The HTML section: a quotable sentence per censor, then its figures."""
    cards = summary.scorecard
    if not cards:
        return ""
    rows = "".join(
        f'<tr data-censor="{html_escape(c.censor)}"><th>{html_escape(c.censor)}</th>'
        f"<td>{html_escape(effectiveness_text(c))}</td><td>{html_escape(evasion_text(c))}</td>"
        f"<td>{'<br>'.join(html_escape(collateral_text(e)) for e in c.collateral) or '-'}"
        "</td></tr>"
        for c in cards
    )
    sentences = "".join(f"<li>{html_escape(c.sentence)}</li>" for c in cards)
    return (
        '<h2 id="scorecard">Scorecard: does the block achieve its aim, at what cost?</h2>'
        f'<ul class="sentences">{sentences}</ul>'
        '<table class="scorecard"><tr><th>censor</th><th>targets blocked (direct)</th>'
        "<th>restored by tools</th><th>bystanders (vs the open network)</th></tr>"
        f"{rows}</table>"
    )
