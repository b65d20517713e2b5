"""The terminal view: a progress bar while trials run, a score table at the end."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

VERDICT_STYLE = {
    "works": "bold green",
    "degraded": "yellow",
    "blocked": "bold red",
    "signalling-blocked": "bold red",
    "media-blocked": "red",
    "invalid": "magenta",
}


def _fmt(value: Any, spec: str = ".0f", unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:{spec}}{unit}"


def score_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"gatecrash: {summary['scenario']} (run {summary['run_id']})")
    for col, justify in (
        ("censor", "left"), ("tool", "left"), ("app", "left"), ("verdict", "left"),
        ("CSSR [95% CI]", "right"), ("setup p50/p95 ms", "right"), ("MOS", "right"),
        ("loss %", "right"), ("delivery", "right"), ("trials", "right"),
    ):  # fmt: skip
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in summary["cells"]:
        lo, hi = c["cssr_ci"]
        style = VERDICT_STYLE.get(c["verdict"], "")
        table.add_row(
            c["censor"],
            c["tool"],
            c["app"],
            f"[{style}]{c['verdict']}[/]",
            f"{c['cssr']:.2f} [{lo:.2f}, {hi:.2f}]",
            f"{_fmt(c['setup_ms_p50'])}/{_fmt(c['setup_ms_p95'])}",
            _fmt(c["mos_median"], ".2f"),
            _fmt(c.get("loss_pct_median"), ".1f"),
            _fmt(c["delivery_ratio"], ".0%") if c["kind"] == "message" else "-",
            str(c["trials"]),
        )
    return table


def print_summary(summary: dict[str, Any], console: Console) -> None:
    console.print(score_table(summary))
    for c in summary["cells"]:
        if c["verdict"] != "works":
            console.print(
                f"[dim]{c['censor']} / {c['tool']} / {c['app']}:[/] {c['reason']}", highlight=False
            )
    for exp in summary["expectations"]:
        mark = "[green]ok[/]" if exp["met"] else "[bold red]FAILED[/]"
        console.print(
            f"expect {exp['censor']} / {exp['tool']} / {exp['app']}: "
            f"{exp['expected']} -> got {exp['verdict']} {mark}"
        )
