"""Run cases one after another, each in its own topology, timing each; an error in one case
is recorded in its report (rows empty, so it does not agree) and the next case still runs."""

from __future__ import annotations

import time
import traceback
from pathlib import Path

from harness.reproduce import case_module
from harness.reproduce.core import CaseReport


def run_case(name: str, quick: bool, workdir: Path) -> CaseReport:
    module = case_module(name)
    started = time.monotonic()
    try:
        report = module.run(quick, workdir / name)
    except Exception as exc:
        report = CaseReport(name, module.TITLE, "quick" if quick else "full",
                            error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        (workdir / f"{name}.error.txt").write_text(traceback.format_exc())
    report.wall_s = time.monotonic() - started
    return report


def run_cases(names: list[str], quick: bool, out: Path) -> list[CaseReport]:
    out.mkdir(parents=True, exist_ok=True)
    return [run_case(n, quick, out / "work") for n in names]
