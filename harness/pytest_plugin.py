"""pytest plugin: `pytest scenarios/quickstart.yaml` collects one test item per `expect`
of a scenario file, runs the scenario once, and passes or fails each item, so `-k`, `-x`,
`--junitxml` and CI integrations work as pytest users expect.

Loaded through the `pytest11` entry point. Only YAML files given on the command line (or
found under a directory given) that parse as scenarios with expectations are collected.

A cell the harness could not measure (verdict `invalid`: too many harness faults) is an
error of its item's set-up, as pytest reports a broken fixture, not a failed expectation.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

if TYPE_CHECKING:  # the harness is imported when a scenario runs, not by every pytest
    from harness.report.summary_model import Summary, SummaryCell


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gatecrash")
    group.addoption("--gatecrash-out", help="results directory for scenario runs")
    group.addoption("--gatecrash-trials", type=int, help="override trials per cell")
    group.addoption(
        "--gatecrash-results",
        metavar="DIR",
        help="judge the expectations on a finished run instead of running the scenario: "
        "DIR/NAME or DIR (e.g. made by `gatecrash merge`)",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        data = yaml.safe_load(file_path.read_text())
    except (OSError, ValueError, yaml.YAMLError):  # not UTF-8 text is a ValueError
        return None
    if isinstance(data, dict) and "censors" in data and data.get("expect"):
        return ScenarioFile.from_parent(parent, path=file_path)
    return None


class ExpectationMissed(Exception):
    pass


class RecordedRunError(Exception):
    """--gatecrash-results names no usable run of this scenario; the message says why."""


def recorded_summary(directory: Path, scenario: Any) -> Summary:
    """The scenario's expectations judged on a finished run: DIR/NAME (as --gatecrash-out
    lays runs out) or DIR itself, which must hold a run of this scenario."""
    from harness.report.loading import RunInputError, load_run
    from harness.report.summary import build_summary

    if (directory / scenario.name / "scenario.json").exists():
        directory = directory / scenario.name
    try:
        run = load_run(directory)
    except RunInputError as exc:
        raise RecordedRunError(str(exc)) from None
    if run.scenario.name != scenario.name:
        raise RecordedRunError(
            f"{directory} holds a run of {run.scenario.name!r}, not of {scenario.name!r}"
        )
    return build_summary(scenario, run.run_id, run.backend, run.results)


class ScenarioFile(pytest.File):
    """A scenario file; its run happens once, on the first item that needs it."""

    _summary: Summary | None = None

    def collect(self):
        from harness.scenario import load_scenario

        self.scenario = load_scenario(self.path)  # a bad file errors at collection, with FILE:LINE
        for exp in self.scenario.expect:
            yield CellItem.from_parent(self, name=f"{exp.censor}/{exp.tool}/{exp.app}", exp=exp)

    def summary(self) -> Summary:
        recorded = self.config.getoption("gatecrash_results")
        if self._summary is None and recorded:
            self._summary = recorded_summary(Path(recorded), self.scenario)
        if self._summary is None:
            from harness.report.summary import build_summary, write_summary
            from harness.runner import Runner

            config = self.config
            if config.getoption("gatecrash_trials"):
                self.scenario.trials = config.getoption("gatecrash_trials")
            out = config.getoption("gatecrash_out")
            out_dir = Path(out) / self.scenario.name if out else Path(tempfile.mkdtemp())
            runner = Runner(self.scenario, out_dir)
            summary = build_summary(self.scenario, runner.run_id, "netns", runner.run())
            write_summary(out_dir / "summary.json", summary)
            self._summary = summary
        return self._summary


class CellItem(pytest.Item):
    def __init__(self, *, exp: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.exp = exp

    def _cell(self) -> SummaryCell | None:
        summary = self.parent.summary()  # type: ignore[union-attr]
        cells = {c.key: c for c in summary.cells}
        return cells.get((self.exp.censor, self.exp.tool, self.exp.app))

    def setup(self) -> None:
        """Runs the scenario (once per file); an invalid cell errors here."""
        cell = self._cell()
        if cell is not None and cell.verdict == "invalid":
            pytest.fail(f"harness fault, cell not measured: {cell.reason}", pytrace=False)

    def runtest(self) -> None:
        cell = self._cell()
        if cell is None or not self.exp.accepts(cell.verdict):
            got = cell.verdict if cell else "no result"
            reason = cell.reason if cell else ""
            raise ExpectationMissed(f"expected {self.exp.verdict}, got {got}: {reason}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style=None) -> str:
        if isinstance(excinfo.value, ExpectationMissed | RecordedRunError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"cell {self.name}"
