"""JUnit XML of a summary, so CI systems show one test per cell.

A cell fails only on an unmet expectation: the scenario's `expect` is the assertion, and a
cell without one is an observation, reported as a pass with its verdict in <system-out>.
An expectation naming a cell that did not run is a failure of its own. An `invalid` cell
is an <error>, expected or not: the harness's own faults kept it from being measured, which
says nothing about the tool. An `inconclusive` cell is judged like any other verdict: it
meets only an expectation that lists it, and its reason says how many more trials would
decide it.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.report.controls import CONTROL_NOTE
from harness.report.summary_model import ExpectationCheck, Summary, SummaryCell

Key = tuple[str, str, str]


def _expected_text(expected: str | list[str]) -> str:
    return expected if isinstance(expected, str) else " or ".join(expected)


def _outcomes_text(outcomes: dict[str, int]) -> str:
    return ", ".join(f"{name}={count}" for name, count in sorted(outcomes.items())) or "none"


def _cell_text(cell: SummaryCell) -> str:
    lines = [
        f"verdict: {cell.verdict}",
        f"reason: {cell.reason}",
        f"outcomes: {_outcomes_text(cell.outcomes)}",
    ]
    if cell.fault_attempts:
        lines.append(
            f"harness faults: {cell.faults} trial(s) not scored, {cell.fault_attempts} "
            f"attempt(s) ({_outcomes_text(cell.fault_kinds)})"
        )
    if cell.control_uncensored:
        lines.append(f"note: {CONTROL_NOTE}")
    return "\n".join(lines)


def junit_tree(summary: Summary) -> ET.ElementTree:
    """<testsuites><testsuite name=SCENARIO> with one <testcase> per cell."""
    name = summary.scenario
    expectations: dict[Key, list[ExpectationCheck]] = {}
    for exp in summary.expectations:
        expectations.setdefault(exp.key, []).append(exp)
    cases: list[ET.Element] = []
    for cell in summary.cells:
        case = ET.Element("testcase", classname=name, name=" / ".join(cell.key))
        missed = [e for e in expectations.pop(cell.key, []) if not e.met]
        if cell.verdict == "invalid":
            error = ET.SubElement(
                case, "error", message=f"invalid: {cell.reason}", type="harness-fault"
            )
            error.text = _cell_text(cell)
        elif missed:
            wanted = "; ".join(_expected_text(e.expected) for e in missed)
            failure = ET.SubElement(
                case, "failure", message=f"expected {wanted}, got {cell.verdict}"
            )
            failure.text = f"expected {wanted}, got {cell.verdict}\n{_cell_text(cell)}"
        ET.SubElement(case, "system-out").text = _cell_text(cell)
        cases.append(case)
    for key, exps in expectations.items():  # expected cells that never ran
        case = ET.Element("testcase", classname=name, name=" / ".join(key))
        wanted = "; ".join(_expected_text(e.expected) for e in exps)
        failure = ET.SubElement(case, "failure", message=f"expected {wanted}, got no trials")
        failure.text = f"expected {wanted}, got no trials: the cell did not run"
        cases.append(case)
    failures = sum(1 for c in cases if c.find("failure") is not None)
    errors = sum(1 for c in cases if c.find("error") is not None)
    root = ET.Element(
        "testsuites",
        name="gatecrash",
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
    )
    suite = ET.SubElement(
        root,
        "testsuite",
        name=name,
        tests=str(len(cases)),
        failures=str(failures),
        errors=str(errors),
        skipped="0",
        timestamp=summary.generated_at,
    )
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="run_id", value=summary.run_id)
    suite.extend(cases)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, summary: Summary) -> None:
    junit_tree(summary).write(path, encoding="utf-8", xml_declaration=True)
