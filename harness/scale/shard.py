"""Shards of a scenario: every trial (censor, tool, app, n) in exactly one of N shards.

The split depends on the scenario alone (never on the machine, the backend or the clock),
so N independent processes (pods of an Indexed Job, CI matrix jobs) each compute the same
plan and run only their own part. Shards are balanced by an expected cost per trial and
greedy longest-processing-time: trials from the most to the least expensive, each onto
the least loaded shard; ties go to the earlier trial (file order) and the lower shard.

The cost model is deliberately simple (whole milliseconds, so no float ties):
  every trial      TOPOLOGY_MS (namespaces, servers, DNS)
  + censor         CENSOR_MS when the censor has techniques (rules, the DPI engine)
  + tool           0 for `direct`, TUN_TOOL_MS for tools that route a tun device
                   (OpenVPN, WireGuard, `<tool>+tun`), TOOL_MS for the other tools
  + app            its plugin's setup_ms (harness/apps/*/__init__.py), + call_seconds for
                   call apps, + what its options add (AppOptions.expected_ms: messages x
                   interval, a download's size)
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from harness.registry import app_plugin
from harness.scenario import Scenario

TrialKey = tuple[str, str, str, int]  # (censor, tool, app, trial)

TOPOLOGY_MS = 3000
CENSOR_MS = 1000
TOOL_MS = 4000
TUN_TOOL_MS = 8000
TUN_TOOLS = frozenset({"openvpn-udp", "openvpn-tcp", "wireguard"})
MANIFEST = "shard.json"
MANIFEST_FORMAT = 1
INDEX_ENV = "JOB_COMPLETION_INDEX"  # set by Kubernetes in each pod of an Indexed Job


class ShardError(ValueError):
    """A shard cannot be named, planned or recorded as asked; the message says why."""


@dataclass(frozen=True)
class Shard:
    index: int  # 0-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(text: str) -> Shard:
    """`I/N` with 0 <= I < N."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ShardError(f"--shard takes I/N (0-based shard I of N, e.g. 0/4), got {text!r}")
    return _checked(int(index), int(count))


def _checked(index: int, count: int) -> Shard:
    if count < 1:
        raise ShardError(f"the number of shards must be 1 or more, got {count}")
    if not 0 <= index < count:
        raise ShardError(f"shard index {index} is not in 0..{count - 1}")
    return Shard(index, count)


def shard_from_args(
    shard: str | None, shards: int | None, env: Mapping[str, str] = os.environ
) -> Shard | None:
    """The shard this process runs: `--shard I/N`, or `--shards N` with the index from
    JOB_COMPLETION_INDEX (a Kubernetes Indexed Job); None when neither is given."""
    if shard is not None:
        chosen = parse_shard(shard)
        if shards is not None and shards != chosen.count:
            raise ShardError(f"--shard {shard} and --shards {shards} disagree")
        return chosen
    if shards is None:
        return None
    raw = env.get(INDEX_ENV)
    if raw is None:
        raise ShardError(
            f"--shards {shards} takes the shard index from ${INDEX_ENV} (set in each pod of a "
            "Kubernetes Indexed Job), which is not set; give --shard I/N instead"
        )
    if not raw.strip().isdigit():
        raise ShardError(f"${INDEX_ENV} is not a whole number: {raw!r}")
    return _checked(int(raw), shards)


def trial_keys(scenario: Scenario) -> list[TrialKey]:
    """Every trial of the scenario, cell by cell in file order (the runner's order)."""
    return scenario.trial_keys()


def _app_ms(scenario: Scenario, app: str) -> int:
    plugin = app_plugin(app)
    timed = plugin.kind == "call" or plugin.lasts_call_seconds
    call_ms = round(scenario.call_seconds * 1000) if timed else 0
    return plugin.setup_ms + call_ms + scenario.options(app).expected_ms()


def _tool_ms(tool: str) -> int:
    if tool == "direct":
        return 0
    return TUN_TOOL_MS if tool in TUN_TOOLS or tool.endswith("+tun") else TOOL_MS


def trial_cost_ms(scenario: Scenario, censor: str, tool: str, app: str) -> int:
    """Expected wall time of one trial of the cell, by the model in the module docstring."""
    censor_ms = CENSOR_MS if scenario.censors[censor] else 0
    program = scenario.tool_variants()[tool].name  # a column label names a variant
    return TOPOLOGY_MS + censor_ms + _tool_ms(program) + _app_ms(scenario, app)


def plan(scenario: Scenario, count: int) -> list[list[TrialKey]]:
    """The trials of each of `count` shards (each list in file order)."""
    _checked(0, count)
    keys = trial_keys(scenario)
    costs = {cell: trial_cost_ms(scenario, *cell) for cell in scenario.cells()}
    order = sorted(range(len(keys)), key=lambda i: (-costs[keys[i][:3]], i))
    loads = [0] * count
    assigned: list[list[int]] = [[] for _ in range(count)]
    for i in order:
        target = min(range(count), key=lambda s: (loads[s], s))
        loads[target] += costs[keys[i][:3]]
        assigned[target].append(i)
    return [[keys[i] for i in sorted(members)] for members in assigned]


def shard_trials(scenario: Scenario, shard: Shard) -> list[TrialKey]:
    return plan(scenario, shard.count)[shard.index]


def scenario_digest(scenario: Scenario) -> str:
    """What identifies a scenario across shards: a hash of its validated content (so
    formatting of the file does not matter, a changed trial count or technique does)."""
    canonical = json.dumps(scenario.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class ShardManifest:
    """OUT/shard.json: which shard of which scenario a results directory holds."""

    scenario: str
    scenario_digest: str
    shard: Shard
    trials: tuple[TrialKey, ...]
    expected_s: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "format": MANIFEST_FORMAT,
                "scenario": self.scenario,
                "scenario_digest": self.scenario_digest,
                "shard": self.shard.index,
                "shards": self.shard.count,
                "expected_s": self.expected_s,
                "trials": [list(key) for key in self.trials],
            },
            indent=2,
        )


def manifest_for(scenario: Scenario, shard: Shard) -> ShardManifest:
    trials = shard_trials(scenario, shard)
    expected_ms = sum(trial_cost_ms(scenario, *key[:3]) for key in trials)
    return ShardManifest(
        scenario.name, scenario_digest(scenario), shard, tuple(trials), expected_ms / 1000
    )


def read_manifest(directory: Path) -> ShardManifest:
    """DIR/shard.json, or ShardError naming the file and what is wrong."""
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ShardError(f"{path}: missing; not a shard (run with --shard I/N)") from None
    except OSError as exc:
        raise ShardError(f"{path}: cannot read: {exc.strerror}") from None
    except ValueError as exc:
        raise ShardError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise ShardError(f"{path}: not a shard manifest of format {MANIFEST_FORMAT}")
    try:
        trials = tuple((str(c), str(t), str(a), int(n)) for c, t, a, n in data["trials"])
        return ShardManifest(
            str(data["scenario"]),
            str(data["scenario_digest"]),
            _checked(int(data["shard"]), int(data["shards"])),
            trials,
            float(data.get("expected_s", 0.0)),
        )
    except ShardError as exc:
        raise ShardError(f"{path}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ShardError(f"{path}: not a shard manifest ({type(exc).__name__}: {exc})") from None


def prepare_shard_dir(out: Path, scenario: Scenario, shard: Shard) -> ShardManifest:
    """Write OUT/shard.json before the shard runs; a directory that already holds another
    shard (resumed with other arguments) is refused."""
    manifest = manifest_for(scenario, shard)
    if (out / MANIFEST).exists():
        held = read_manifest(out)
        if (held.scenario_digest, held.shard) != (manifest.scenario_digest, shard):
            raise ShardError(
                f"{out / MANIFEST}: this directory holds shard {held.shard} of scenario "
                f"{held.scenario!r} ({held.scenario_digest[:19]}), not shard {shard} of "
                f"{scenario.name!r} ({manifest.scenario_digest[:19]})"
            )
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(manifest.to_json() + "\n")
    return manifest
