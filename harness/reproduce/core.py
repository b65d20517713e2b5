"""Rows of a reproduction: a published figure beside the one measured here, and whether they
agree within a tolerance the row states (with its reason). Rendering and JSON live here so
every case reports the same way."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.scoring.stats import wilson_interval


@dataclass
class Published:
    """What the paper reports, and where (so a reader can check it)."""

    value: str
    source: str
    section: str


@dataclass
class Measured:
    """What this run measured: the value, its interval or spread, and how many samples."""

    value: str
    spread: str
    n: int


@dataclass
class Row:
    quantity: str
    published: Published
    measured: Measured
    agrees: bool
    tolerance: str  # what counts as agreeing, and why that much
    note: str = ""  # e.g. why a row cannot agree (a finding), or what was configured
    # A published figure the shipped censor is known not to reproduce (the note says why):
    # the row is expected not to agree, and reported, not tuned away.
    finding: bool = False


@dataclass
class CaseReport:
    name: str
    title: str
    mode: str  # "quick" or "full"
    configured: dict[str, Any] = field(default_factory=dict)
    rows: list[Row] = field(default_factory=list)
    wall_s: float = 0.0
    error: str | None = None

    @property
    def agrees(self) -> bool:
        return self.error is None and bool(self.rows) and all(r.agrees for r in self.rows)


def proportion(successes: int, n: int) -> tuple[float, float, float]:
    """Share with its 95% Wilson interval: (ratio, low, high)."""
    low, high = wilson_interval(successes, n)
    return (successes / n if n else 0.0), low, high


def share_text(successes: int, n: int) -> tuple[str, str]:
    """('13/50 = 26.0%', '95% Wilson 15.9-39.6%, width 23.7 pts')."""
    ratio, low, high = proportion(successes, n)
    return (
        f"{successes}/{n} = {ratio:.1%}",
        f"95% Wilson {low:.1%}-{high:.1%} (width {(high - low) * 100:.1f} pts)",
    )


def count_row(quantity: str, published: Published, ok: int, n: int, what: str,
              tolerance: str = "all of them: a deterministic rule") -> Row:  # fmt: skip
    """A row about a rule that should hold every time: `ok` of `n` behaved as published."""
    return Row(quantity, published, Measured(f"{ok}/{n} {what}", "", n), n > 0 and ok == n,
               tolerance)  # fmt: skip


COLUMNS = ("quantity", "published", "measured", "n", "agrees")


def _cells(row: Row) -> list[str]:
    pub = f"{row.published.value} [{row.published.source}, {row.published.section}]"
    meas = row.measured.value + (f" ({row.measured.spread})" if row.measured.spread else "")
    return [row.quantity, pub, meas, str(row.measured.n), "yes" if row.agrees else "NO"]


def render(reports: list[CaseReport], width: int = 60) -> str:
    """One table per case, then the tolerances and notes under it (long text wraps there)."""
    import textwrap

    out: list[str] = []
    for rep in reports:
        head = f"== {rep.name} ({rep.mode}, {rep.wall_s:.1f} s): {rep.title}"
        out.append(head)
        if rep.configured:
            out.append("   configured: " + ", ".join(f"{k}={v}" for k, v in rep.configured.items()))
        if rep.error:
            out.append(f"   ERROR: {rep.error}")
        table = [list(COLUMNS)] + [
            [textwrap.shorten(c, width) if i < 3 else c for i, c in enumerate(_cells(r))]
            for r in rep.rows
        ]
        widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
        for j, line in enumerate(table):
            out.append(" | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
            if j == 0:
                out.append("-+-".join("-" * w for w in widths))
        for i, r in enumerate(rep.rows, 1):
            out.append(f"  [{i}] {r.quantity}")
            out.append(f"      published: {r.published.value} ({r.published.source}, "
                       f"{r.published.section})")  # fmt: skip
            spread = f"; {r.measured.spread}" if r.measured.spread else ""
            out.append(f"      measured:  {r.measured.value}{spread}; n={r.measured.n}")
            out.append(f"      tolerance: {r.tolerance}")
            if r.note:
                out.append(f"      note:      {r.note}")
        out.append("")
    return "\n".join(out)


def to_json(reports: list[CaseReport]) -> dict[str, Any]:
    return {
        "schema": "gatecrash-reproduce-v1",
        "agrees": all(r.agrees for r in reports),
        "cases": [{**asdict(r), "agrees": r.agrees} for r in reports],
    }


def write_json(path: Path, reports: list[CaseReport]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(reports), indent=2) + "\n")
