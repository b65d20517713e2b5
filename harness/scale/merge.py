"""`gatecrash merge OUT DIR...`: shard result directories into one ordinary run directory.

OUT gets what a single run would have written: scenario.json, results.jsonl (every
shard's records, their log paths pointing into OUT), trials/ (hard links where the file
system allows, copies otherwise) and summary.json, so `report`, `gate`, `baseline` and the
pytest plugin read it like any run. merge.json records which shards went in.

Refused (MergeError): shards of different scenarios (the digest in each shard.json, checked
against the scenario.json beside it), a shard given twice, trials in more than one shard, a
record outside its shard's trials. Missing shards or trials are refused too unless
`allow_partial`, then they are warnings.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from harness.report.loading import (
    RunInputError,
    load_scenario_json,
    read_results_tolerant,
    recorded_backend,
)
from harness.report.summary import build_summary, write_summary
from harness.results import TrialResult
from harness.scale.shard import (
    ShardError,
    ShardManifest,
    TrialKey,
    read_manifest,
    scenario_digest,
)
from harness.scenario import Scenario

RECORD = "merge.json"


class MergeError(Exception):
    """The directories cannot be merged; the message names them and says why."""


@dataclass
class ShardDir:
    directory: Path
    manifest: ShardManifest
    scenario: Scenario
    results: list[TrialResult]
    backend: str | None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Merged:
    out: Path
    scenario: Scenario
    shards: list[ShardDir]
    count: int  # N, the number of shards the scenario was split into
    missing_shards: list[int]
    missing_trials: list[TrialKey]  # of the shards given
    results: list[TrialResult]
    warnings: list[str]


def load_shard(directory: Path) -> ShardDir:
    """A shard's manifest, scenario and records, each checked against the others."""
    if not directory.is_dir():
        raise MergeError(f"{directory}: no such directory")
    try:
        manifest = read_manifest(directory)
        scenario = load_scenario_json(directory / "scenario.json")
    except (ShardError, RunInputError) as exc:
        raise MergeError(str(exc)) from None
    if scenario_digest(scenario) != manifest.scenario_digest:
        raise MergeError(
            f"{directory}: shard.json names another scenario ({manifest.scenario_digest[:19]}) "
            f"than the scenario.json beside it ({scenario_digest(scenario)[:19]})"
        )
    path = directory / "results.jsonl"
    warnings: list[str] = []
    results: list[TrialResult] = []
    if path.exists():
        read = read_results_tolerant(path)
        results, warnings = read.results, list(read.warnings)
    outside = sorted({r.key for r in results} - set(manifest.trials))
    if outside:
        raise MergeError(
            f"{path}: {len(outside)} record(s) of trials that are not in shard "
            f"{manifest.shard}: {_keys_text(outside)}"
        )
    return ShardDir(directory, manifest, scenario, results, recorded_backend(directory), warnings)


def _keys_text(keys: list[TrialKey], limit: int = 5) -> str:
    shown = ", ".join(f"{c}/{t}/{a} #{n}" for c, t, a, n in keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def check_together(shards: list[ShardDir]) -> None:
    """One scenario, one N, each shard once, no trial twice."""
    first = shards[0]
    for other in shards[1:]:
        if other.manifest.scenario_digest != first.manifest.scenario_digest:
            raise MergeError(
                f"{first.directory} and {other.directory} are shards of different scenarios: "
                f"{first.manifest.scenario!r} ({first.manifest.scenario_digest[:19]}) and "
                f"{other.manifest.scenario!r} ({other.manifest.scenario_digest[:19]})"
            )
        if other.manifest.shard.count != first.manifest.shard.count:
            raise MergeError(
                f"{first.directory} is one of {first.manifest.shard.count} shards, "
                f"{other.directory} one of {other.manifest.shard.count}"
            )
    owner: dict[TrialKey, ShardDir] = {}
    by_index: dict[int, ShardDir] = {}
    for shard in shards:
        index = shard.manifest.shard.index
        if index in by_index:
            raise MergeError(
                f"shard {shard.manifest.shard} is given twice: {by_index[index].directory} "
                f"and {shard.directory}"
            )
        by_index[index] = shard
        overlap = sorted(k for k in shard.manifest.trials if k in owner)
        if overlap:
            raise MergeError(
                f"{owner[overlap[0]].directory} and {shard.directory} overlap: "
                f"{len(overlap)} trial(s) in both: {_keys_text(overlap)}"
            )
        owner.update(dict.fromkeys(shard.manifest.trials, shard))


def _trial_part(result: TrialResult, path: str) -> str | None:
    """The part of a logged path from trials/CENSOR/TOOL/APP/N on, if it has one."""
    c, t, a = (re.escape(x) for x in result.cell)
    match = re.search(
        rf"(?:^|/)(trials/{c}/{t}/{a}/{result.trial}(?:\.attempt\d+)?(?:/.*)?)$", path
    )
    return match.group(1) if match else None


def relocate(result: TrialResult, out: Path) -> TrialResult:
    """The record with its log paths pointing into OUT's copy of the trial directory."""
    logs = {}
    for name, path in result.logs.items():
        part = _trial_part(result, path)
        logs[name] = str(out / part) if part else path
    return result.model_copy(update={"logs": logs})


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_out(out: Path, dirs: list[Path]) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MergeError(f"{out}: exists and is not an empty directory; merge into a new one")
    for directory in dirs:
        if out.resolve() == directory.resolve():
            raise MergeError(f"{out}: is one of the shards; merge into a new directory")


def merge(out: Path, dirs: list[Path], allow_partial: bool = False) -> Merged:
    """Check the shards in `dirs`, then write OUT as one run directory."""
    if not dirs:
        raise MergeError("no shard directories given")
    _check_out(out, dirs)
    shards = sorted((load_shard(d) for d in dirs), key=lambda s: s.manifest.shard.index)
    check_together(shards)
    count = shards[0].manifest.shard.count
    present = {s.manifest.shard.index for s in shards}
    missing_shards = [i for i in range(count) if i not in present]
    recorded = {r.key for s in shards for r in s.results}
    missing_trials = [k for s in shards for k in s.manifest.trials if k not in recorded]
    gaps = _gaps_text(count, missing_shards, missing_trials)
    if gaps and not allow_partial:
        raise MergeError(f"{gaps} (--allow-partial scores what there is)")
    warnings = [w for s in shards for w in s.warnings] + ([gaps] if gaps else [])
    backends = sorted({s.backend for s in shards if s.backend})
    if len(backends) > 1:
        warnings.append(f"the shards ran on different backends: {', '.join(backends)}")
    results = [relocate(r, out) for s in shards for r in s.results]
    if not results:
        raise MergeError("the shards recorded no trial: nothing to score")
    _write(out, shards, results, backends[0] if backends else "netns")
    merged = Merged(
        out, shards[0].scenario, shards, count, missing_shards, missing_trials, results, warnings
    )
    (out / RECORD).write_text(json.dumps(_record(merged), indent=2) + "\n")
    return merged


def _gaps_text(count: int, missing_shards: list[int], missing_trials: list[TrialKey]) -> str:
    parts = []
    if missing_shards:
        parts.append(
            f"missing shard(s) {', '.join(map(str, missing_shards))} of {count} "
            "(no directory given for them)"
        )
    if missing_trials:
        parts.append(
            f"{len(missing_trials)} trial(s) of the given shards have no record: "
            f"{_keys_text(missing_trials)}"
        )
    return "; ".join(parts)


def _write(out: Path, shards: list[ShardDir], results: list[TrialResult], backend: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(shards[0].directory / "scenario.json", out / "scenario.json")
    for shard in shards:
        if (shard.directory / "trials").is_dir():
            shutil.copytree(
                shard.directory / "trials",
                out / "trials",
                copy_function=_link_or_copy,
                dirs_exist_ok=True,
            )
    with (out / "results.jsonl").open("w") as f:
        f.writelines(r.model_dump_json() + "\n" for r in results)
    scenario = shards[0].scenario
    write_summary(
        out / "summary.json", build_summary(scenario, results[0].run_id, backend, results)
    )


def _record(merged: Merged) -> dict:
    return {
        "scenario": merged.scenario.name,
        "scenario_digest": scenario_digest(merged.scenario),
        "shards": merged.count,
        "merged": [
            {
                "shard": s.manifest.shard.index,
                "directory": str(s.directory),
                "trials": len(s.manifest.trials),
                "records": len(s.results),
                "run_ids": sorted({r.run_id for r in s.results}),
            }
            for s in merged.shards
        ],
        "missing_shards": merged.missing_shards,
        "missing_trials": [list(k) for k in merged.missing_trials],
    }
