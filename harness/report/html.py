"""The HTML report: one self-contained file (inline CSS and SVG, no network) per run.

Readers are tool developers and researchers deciding what to believe, so the page leads
with the censor x tool verdict heatmap per app, then the distributions behind the medians
(MOS, setup time), then the harness's own faults (kept apart: they are never censorship),
then per-trial evidence and timelines with the censor's events on them, and ends with the
scenario that produced it all.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from html import escape
from pathlib import Path
from typing import Any

from harness.report.evidence import TrialEvidence, describe_event, started_epoch, wants_evidence
from harness.report.scorecard_view import scorecard_section
from harness.report.summary_model import Summary, SummaryCell
from harness.results import TrialResult

VERDICT_COLOUR = {
    "works": "#2e9d57",
    "degraded": "#e0b03a",
    "media-blocked": "#e0703a",
    "signalling-blocked": "#c8372d",
    "blocked": "#a0221b",
    "inconclusive": "#6b8796",
    "invalid": "#8e55b8",
}
PHASE_COLOUR = {
    "topology": "#9aa7b4",
    "servers": "#6f8fb0",
    "censor": "#b06f8f",
    "tool": "#8fb06f",
    "app": "#4f7fd0",
    "teardown": "#c0c6cc",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#1d2733;padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#dde3e8;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.meta{color:#5b6773}table{border-collapse:collapse}
td,th{padding:4px 8px;border:1px solid #dde3e8;text-align:left;vertical-align:top}
th{background:#f3f5f7}
table.heatmap td.heat-cell{color:#fff;min-width:130px;font-weight:600}
table.heatmap td.heat-cell small{display:block;font-weight:400;opacity:.92}
table.heatmap td.heat-cell a{color:inherit;text-decoration:none}
.flag{font-size:12px;background:#fff3;border-radius:3px;padding:0 4px}
.legend span{display:inline-block;padding:1px 8px;margin-right:6px;color:#fff;border-radius:3px}
.ok{color:#2e9d57;font-weight:600}.bad{color:#c8372d;font-weight:600}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:12px;max-height:340px}
details{margin:6px 0}summary{cursor:pointer}
svg text{font:11px system-ui,sans-serif;fill:#1d2733}
.evidence{border-left:3px solid #e0703a;padding-left:10px;margin:10px 0}
"""

# Errors in the page's own script become visible (and testable) instead of silent.
SCRIPT = """
window.gatecrashErrors = [];
window.addEventListener('error', function (e) {
  window.gatecrashErrors.push(String(e.message));
  document.body.setAttribute('data-errors', window.gatecrashErrors.length);
});
document.addEventListener('DOMContentLoaded', function () {
  var cells = document.querySelectorAll('td.heat-cell');
  cells.forEach(function (td) {
    td.title = td.getAttribute('data-censor') + ' / ' + td.getAttribute('data-tool') +
      ' / ' + td.getAttribute('data-app') + ': ' + td.getAttribute('data-verdict');
  });
  document.body.setAttribute('data-heat-cells', cells.length);
  document.body.setAttribute('data-ready', '1');
});
"""


def _anchor(*parts: object) -> str:
    """An id safe in any attribute, distinct per cell: other characters as _<hex>."""
    safe = (re.sub(r"[^A-Za-z0-9.-]", lambda m: f"_{ord(m.group()):x}", str(p)) for p in parts)
    return "c-" + "--".join(safe)


def _fmt(value: Any, spec: str = ".0f", unit: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{unit}"


def heatmap(app: str, cells: list[SummaryCell], censors: list[str], tools: list[str]) -> str:
    by_key = {(c.censor, c.tool): c for c in cells}
    head = "".join(f"<th>{escape(t)}</th>" for t in tools)
    rows = []
    for censor in censors:
        tds = []
        for tool in tools:
            c = by_key.get((censor, tool))
            if c is None:
                tds.append("<td>-</td>")
                continue
            colour = VERDICT_COLOUR.get(c.verdict, "#777")
            if c.kind == "call":
                detail = f"CSSR {c.cssr:.2f} · MOS {_fmt(c.mos_median, '.2f')}"
            else:
                detail = f"connect {c.cssr:.2f} · delivered {_fmt(c.delivery_ratio, '.0%')}"
            flag = ' <span class="flag">control not censored</span>' if c.control_uncensored else ""
            if c.fault_attempts:
                flag += (
                    f' <span class="flag faults">harness faults {c.faults}/'
                    f"{c.fault_attempts}</span>"
                )
            tds.append(
                f'<td class="heat-cell" style="background:{colour}" '
                f'data-censor="{escape(censor)}" data-tool="{escape(tool)}" '
                f'data-app="{escape(app)}" data-verdict="{escape(c.verdict)}">'
                f'<a href="#{_anchor(censor, tool, app)}">{escape(c.verdict)}'
                f"<small>{detail} · n={c.trials}</small></a>{flag}</td>"
            )
        rows.append(f"<tr><th>{escape(censor)}</th>{''.join(tds)}</tr>")
    return (
        f'<table class="heatmap" data-app="{escape(app)}"><tr><th>censor \\ tool</th>{head}</tr>'
        + "".join(rows)
        + "</table>"
    )


def strip_plot(
    title: str, series: list[tuple[str, list[float]]], lo: float, hi: float, unit: str
) -> str:
    """One row of dots per cell: every trial's value, with the median marked."""
    if not any(values for _, values in series):
        return ""
    width, label_w, row_h = 760, 230, 22
    plot_w = width - label_w - 50
    height = row_h * len(series) + 34

    def x(v: float) -> float:
        v = min(max(v, lo), hi)
        return label_w + (v - lo) / (hi - lo) * plot_w if hi > lo else label_w

    parts = [f'<svg width="{width}" height="{height}" role="img" aria-label="{escape(title)}">']
    for i in range(5):
        v = lo + (hi - lo) * i / 4
        parts.append(
            f'<line x1="{x(v):.1f}" x2="{x(v):.1f}" y1="4" y2="{height - 24}" stroke="#e3e7eb"/>'
            f'<text x="{x(v):.1f}" y="{height - 8}" text-anchor="middle">{v:.3g}{unit}</text>'
        )
    for row, (label, values) in enumerate(series):
        y = 14 + row * row_h
        parts.append(f'<text x="4" y="{y + 4}">{escape(label)}</text>')
        for v in values:
            parts.append(
                f'<circle cx="{x(v):.1f}" cy="{y}" r="4" fill="#4f7fd0" fill-opacity=".55"/>'
            )
        if values:
            med = sorted(values)[len(values) // 2]
            parts.append(
                f'<line x1="{x(med):.1f}" x2="{x(med):.1f}" y1="{y - 8}" y2="{y + 8}" '
                'stroke="#1d2733" stroke-width="2"/>'
            )
    parts.append("</svg>")
    return f"<h3>{escape(title)}</h3>" + "".join(parts)


def timeline(ev: TrialEvidence) -> str:
    """The trial's phases as a bar, with the censor's actions as ticks where they happened."""
    trial = ev.trial
    total_ms = sum(trial.phases_ms.values()) or trial.wall_s * 1000 or 1.0
    width, height, bar_y = 760, 46, 8
    scale = (width - 10) / total_ms
    parts = [f'<svg width="{width}" height="{height}" class="timeline">']
    x = 5.0
    for phase, ms in trial.phases_ms.items():
        w = ms * scale
        colour = PHASE_COLOUR.get(phase, "#aaa")
        parts.append(
            f'<rect x="{x:.1f}" y="{bar_y}" width="{max(w, 0.5):.1f}" height="16" '
            f'fill="{colour}"><title>{escape(phase)} {ms:.0f} ms</title></rect>'
        )
        if w > 40:
            parts.append(f'<text x="{x + 3:.1f}" y="{bar_y + 12}">{escape(phase)}</text>')
        x += w
    t0 = started_epoch(trial)
    for event in ev.events:
        when = event.get("time")
        if not isinstance(when, int | float):
            continue
        ex = 5 + (when - t0) * 1000 * scale
        if 0 <= ex <= width:
            parts.append(
                f'<line x1="{ex:.1f}" x2="{ex:.1f}" y1="{bar_y - 4}" y2="{bar_y + 26}" '
                f'stroke="#c8372d" stroke-width="2"><title>{escape(describe_event(event, t0))}'
                "</title></line>"
            )
    parts.append(f'<text x="5" y="{height - 4}">0 s</text>')
    parts.append(
        f'<text x="{width - 5}" y="{height - 4}" text-anchor="end">{total_ms / 1000:.2f} s</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _pcap_table(ev: TrialEvidence) -> str:
    if ev.pcap_note:
        return f"<p class=meta>pcap check: {escape(ev.pcap_note)}</p>"
    if not ev.pcap:
        return ""
    rows = []
    for check in ev.pcap:
        mark = (
            '<span class="ok">agree</span>'
            if check.agree
            else f'<span class="bad">DISAGREE: {escape(check.why)}</span>'
        )
        rows.append(
            f"<tr><td>{check.direction}</td><td>{check.app['loss_pct']:.2f} %</td>"
            f"<td>{check.pcap['loss_pct']:.2f} %</td><td>{check.app['jitter_ms']:.3f}</td>"
            f"<td>{check.pcap['jitter_ms']:.3f}</td><td>{mark}</td></tr>"
        )
    return (
        '<table class="pcap-check"><tr><th>direction</th><th>loss (app)</th>'
        "<th>loss (pcap)</th><th>jitter ms (app)</th><th>jitter ms (pcap)</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )


def faults_section(summary: Summary, results: list[TrialResult]) -> str:
    """Every attempt that ended in a harness fault, apart from the verdicts: the harness's
    own failures, retried and never scored as censorship."""
    records = sorted((r for r in results if r.is_fault), key=lambda r: (r.key, r.attempt))
    if not records:
        return ""
    totals = summary.faults
    kinds = ", ".join(f"{escape(k)} {n}" for k, n in totals.by_kind.items())
    rows = "".join(
        f"<tr><td>{escape(' / '.join(r.cell))}</td><td>{r.trial}</td><td>{r.attempt}</td>"
        f"<td>{escape(r.fault.phase if r.fault else '-')}</td>"
        f"<td>{escape(r.fault.kind if r.fault else '-')}</td>"
        f"<td><pre>{escape(r.fault.detail if r.fault else r.error or '')}</pre></td></tr>"
        for r in records
    )
    return (
        '<h2 id="harness-faults">Harness faults</h2>'
        f"<p class=meta>{len(records)} attempt(s) ended in a harness fault ({kinds}); "
        f"{totals.trials} trial(s) ended in one and were not scored. These are the "
        "harness's own failures (set-up, servers, agents, a tool that failed before the censor "
        "saw it): never censorship, never in a ratio.</p>"
        '<table class="faults"><tr><th>cell</th><th>trial</th><th>attempt</th><th>phase</th>'
        f"<th>kind</th><th>detail</th></tr>{rows}</table>"
    )


def trial_block(ev: TrialEvidence, detailed: bool) -> str:
    trial = ev.trial
    attempt = f" (attempt {trial.attempt})" if trial.attempt else ""
    fault = f" · {escape(trial.fault.kind)} in {escape(trial.fault.phase)}" if trial.fault else ""
    head = (
        f"trial {trial.trial}{attempt}: <b>{escape(trial.outcome)}</b>{fault}"
        + (f" · MOS {trial.call.mos:.2f}" if trial.call and trial.call.mos is not None else "")
        + (f" · {escape(trial.error.splitlines()[0])}" if trial.error else "")
    )
    body = [timeline(ev)]
    if detailed:
        t0 = started_epoch(trial)
        if ev.events:
            lines = "\n".join(describe_event(e, t0) for e in ev.events)
            body.append(f"<h4>censor events ({ev.installed} rules installed)</h4>")
            body.append(f"<pre>{escape(lines)}</pre>")
        body.append(_pcap_table(ev))
        for name, lines in ev.log_tails.items():
            text = escape("\n".join(lines))
            body.append(f"<h4>{escape(name)} (last lines)</h4><pre>{text}</pre>")
    cls = ' class="evidence"' if detailed else ""
    return f"<details{cls}><summary>{head}</summary>{''.join(body)}</details>"


def render(
    summary: Summary,
    results: list[TrialResult],
    evidence: dict[tuple[str, str, str, int], TrialEvidence],
    scenario_text: str,
) -> str:
    cells = summary.cells
    apps = list(dict.fromkeys(c.app for c in cells))
    censors = list(dict.fromkeys(c.censor for c in cells))
    tools = list(dict.fromkeys(c.tool for c in cells))
    trials_by_cell: dict[tuple[str, str, str], list[TrialResult]] = defaultdict(list)
    for r in sorted(results, key=lambda r: (r.key, r.attempt)):
        trials_by_cell[r.cell].append(r)
    trials = len({r.key for r in results})
    attempts = f" ({len(results)} attempts)" if len(results) != trials else ""

    out = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>gatecrash: {escape(summary.scenario)}</title>",
        f"<style>{CSS}</style><script>{SCRIPT}</script></head><body>",
        f"<h1>gatecrash: {escape(summary.scenario)}</h1>",
        f"<p class=meta>run {escape(summary.run_id)} · backend {escape(summary.backend)}"
        f" · {trials} trials{attempts} · generated {escape(summary.generated_at)} · "
        f"{escape(summary.thresholds_note)}</p>",
        '<p class="legend">'
        + "".join(f'<span style="background:{c}">{v}</span>' for v, c in VERDICT_COLOUR.items())
        + "</p>",
    ]
    out.append(scorecard_section(summary))
    if versions := {t: v for t, v in summary.tool_versions.items() if v}:
        listed = " · ".join(f"{escape(t)}: {escape(', '.join(v))}" for t, v in versions.items())
        out.append(f'<p class="meta tools">tools: {listed}</p>')
    if summary.expectations:
        rows = "".join(
            f"<tr><td>{escape(e.censor)} / {escape(e.tool)} / {escape(e.app)}</td>"
            f"<td>{escape(str(e.expected))}</td><td>{escape(str(e.verdict))}</td>"
            f"<td>{'<span class=ok>met</span>' if e.met else '<span class=bad>MISSED</span>'}"
            "</td></tr>"
            for e in summary.expectations
        )
        out.append(
            "<h2>Expectations</h2><table><tr><th>cell</th><th>expected</th><th>got</th>"
            f"<th></th></tr>{rows}</table>"
        )
    for app in apps:
        app_cells = [c for c in cells if c.app == app]
        out.append(f"<h2>{escape(app)}: verdicts</h2>")
        out.append(heatmap(app, app_cells, censors, tools))
        labels = [(f"{c.censor} / {c.tool}", c.key) for c in app_cells]
        if app_cells and app_cells[0].kind == "call":
            mos = [(lbl, [t.call.mos for t in trials_by_cell[k] if t.call and t.call.mos
                          is not None]) for lbl, k in labels]  # fmt: skip
            setup = [(lbl, [t.call.setup_ms for t in trials_by_cell[k] if t.call and
                            t.call.setup_ms is not None]) for lbl, k in labels]  # fmt: skip
            out.append(strip_plot("MOS per trial (set-up calls)", mos, 1.0, 4.5, ""))
            hi = max([v for _, vs in setup for v in vs] + [1.0])
            out.append(strip_plot("call setup time per trial (INVITE to 200 OK)", setup, 0, hi,
                                  " ms"))  # fmt: skip
        else:
            connect = [(lbl, [t.message.connect_ms for t in trials_by_cell[k] if t.message and
                              t.message.connect_ms is not None]) for lbl, k in labels]  # fmt: skip
            hi = max([v for _, vs in connect for v in vs] + [1.0])
            out.append(strip_plot("connect time per trial", connect, 0, hi, " ms"))
    out.append(faults_section(summary, results))
    out.append("<h2>Cells: evidence and timelines</h2>")
    out.append(
        "<p class=meta>Bars: where each trial's time went (phases); red ticks: the censor's "
        "actions, hover for details. Cells that did not simply work show events, pcap checks "
        "and log tails.</p>"
    )
    for c in cells:
        key = c.key
        out.append(
            f'<h3 id="{_anchor(*key)}">{escape(" / ".join(key))}: '
            f'<span style="color:{VERDICT_COLOUR.get(c.verdict, "#777")}">'
            f"{escape(c.verdict)}</span></h3><p>{escape(c.reason)}</p>"
        )
        for trial in trials_by_cell[key]:
            ev = evidence.get(trial.key)
            if ev is None or ev.trial.attempt != trial.attempt:  # kept for another attempt
                ev = TrialEvidence(trial)
            detailed = wants_evidence(trial, c.verdict)
            out.append(trial_block(ev, detailed))
    out.append("<h2>Scenario</h2>")
    out.append(f"<pre>{escape(scenario_text, quote=False)}</pre>")
    out.append("</body></html>")
    return "\n".join(out)


def write_html(
    path: Path,
    summary: Summary,
    results: list[TrialResult],
    evidence: dict[tuple[str, str, str, int], TrialEvidence],
    scenario: dict[str, Any],
) -> None:
    path.write_text(render(summary, results, evidence, json.dumps(scenario, indent=2)))
