"""Read a finished (or killed) run directory back without trusting it.

A run killed mid-write leaves a last line cut short, and results.jsonl may hold lines of
another schema_version after an upgrade: both are skipped with a warning so the complete
trials can still be scored. Only input that leaves nothing to score is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from harness.errors import not_utf8
from harness.results import READABLE_SCHEMA_VERSIONS, TrialResult
from harness.scenario import Scenario, scenario_model


class RunInputError(Exception):
    """The run directory cannot be scored; the message names the file and what is wrong."""


@dataclass
class ResultsRead:
    results: list[TrialResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Byte offset just past the last whole record: a resumed run cuts the file here (dropping
    # a half-written line) and appends after it.
    complete_bytes: int = 0


@dataclass
class RunData:
    directory: Path
    scenario: Scenario
    results: list[TrialResult]
    run_id: str
    backend: str
    warnings: list[str]


def read_results_tolerant(path: Path) -> ResultsRead:
    """Every complete, current-schema line of `path`; the rest become warnings."""
    out = ResultsRead()
    data = path.read_bytes()
    other_versions: dict[Any, int] = {}
    offset = 0
    raws = data.split(b"\n")
    for number, raw in enumerate(raws, start=1):
        complete = number < len(raws)  # only the last piece lacks its "\n"
        offset += len(raw) + int(complete)
        line = raw.strip()
        if complete:
            out.complete_bytes = offset
        if not line:
            continue
        try:
            record = json.loads(line)
        except UnicodeDecodeError as exc:
            what = "is not UTF-8 text" if complete else "is cut short (run stopped mid-write?)"
            out.warnings.append(
                f"{path}:{number}: line {what} (byte 0x{line[exc.start]:02x}); skipped"
            )
            continue
        except json.JSONDecodeError:
            what = "is not JSON" if complete else "is cut short (run stopped mid-write?)"
            out.warnings.append(f"{path}:{number}: line {what}; skipped")
            continue
        if not isinstance(record, dict):
            out.warnings.append(f"{path}:{number}: not a trial record; skipped")
            continue
        # Whole JSON: the record is complete even if the writer stopped before its "\n".
        out.complete_bytes = offset
        version = record.get("schema_version")
        if version not in READABLE_SCHEMA_VERSIONS:
            other_versions[version] = other_versions.get(version, 0) + 1
            continue
        try:
            out.results.append(TrialResult.model_validate(record))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            out.warnings.append(f"{path}:{number}: not a valid trial ({where}: {first['msg']})")
    for version, count in other_versions.items():
        out.warnings.append(
            f"{path}: skipped {count} line{'s' if count > 1 else ''} of schema_version "
            f"{version!r} (this gatecrash reads {', '.join(map(str, READABLE_SCHEMA_VERSIONS))})"
        )
    return out


def load_scenario_json(path: Path) -> Scenario:
    """The validated scenario a run saved next to its results."""
    try:
        return scenario_model().model_validate_json(path.read_text())
    except FileNotFoundError:
        raise RunInputError(f"{path}: missing; is this a gatecrash results directory?") from None
    except OSError as exc:
        raise RunInputError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise RunInputError(not_utf8(path, exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise RunInputError(f"{path}: not a valid scenario: {where}: {first['msg']}") from None


def recorded_backend(directory: Path) -> str | None:
    """The backend a run directory's summary.json names, if any (scenario.json has none).
    Read leniently: any summary version, or none, only loses the label."""
    try:
        backend = json.loads((directory / "summary.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None
    return backend if isinstance(backend, str) else None


def load_run(directory: Path) -> RunData:
    """Scenario and trial results of a run directory, or RunInputError saying why not."""
    if not directory.is_dir():
        raise RunInputError(f"{directory}: no such results directory")
    scenario = load_scenario_json(directory / "scenario.json")
    path = directory / "results.jsonl"
    try:
        read = read_results_tolerant(path)
    except FileNotFoundError:
        raise RunInputError(f"{path}: missing; the run recorded no trial") from None
    except OSError as exc:
        raise RunInputError(f"{path}: cannot read: {exc.strerror}") from None
    if not read.results:
        shown = read.warnings[:3]  # a binary file has a warning per "line"
        if len(read.warnings) > 3:
            shown.append(f"{len(read.warnings) - 3} more")
        detail = f"; {'; '.join(shown)}" if shown else ""
        raise RunInputError(f"{path}: no trial results to score{detail}")
    return RunData(
        directory=directory,
        scenario=scenario,
        results=read.results,
        run_id=read.results[0].run_id,
        backend=recorded_backend(directory) or "netns",
        warnings=read.warnings,
    )
