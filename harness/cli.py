"""The `gatecrash` command: run, validate, clean, report, baseline, gate.

Exit codes: 0 every expectation held, 1 one failed (for `gate`: a cell regressed),
2 bad input or setup problem, 3 (`run`, `report`) a cell is `invalid`: harness faults kept
it from being measured (takes precedence over 1), 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from harness.privileges import need_privileges

if TYPE_CHECKING:
    from harness.report.summary_model import Summary

EXIT_OK, EXIT_EXPECT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_HARNESS_FAULT = 3  # a cell is invalid: the harness, not the censor, failed it

console = Console(stderr=False)
errors = Console(stderr=True)
if not console.is_terminal:
    console.width = 160  # logs and CI: keep the score table on one line per cell


def _scored_status(summary: Summary) -> int:
    """3 when a cell is invalid (the run measured too little to judge it), else 1 when an
    expectation failed, else 0."""
    if any(c.verdict == "invalid" for c in summary.cells):
        return EXIT_HARNESS_FAULT
    return EXIT_OK if all(e.met for e in summary.expectations) else EXIT_EXPECT_FAILED


def _load_scenario_or_say(path: str):
    """The validated scenario, or None after printing its problems (FILE:LINE:COL each)."""
    from harness.scenario import ScenarioError, load_scenario

    try:
        return load_scenario(path)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_validate(args: argparse.Namespace) -> int:
    status = EXIT_OK
    for path in args.files:
        if (scenario := _load_scenario_or_say(path)) is None:
            status = EXIT_BAD_INPUT
            continue
        console.print(
            f"{path}: ok ({len(scenario.cells())} cells x {scenario.trials} trials)",
            highlight=False,
        )
    return status


def cmd_run(args: argparse.Namespace) -> int:
    if (scenario := _load_scenario_or_say(args.scenario)) is None:
        return EXIT_BAD_INPUT
    if args.trials:
        scenario.trials = args.trials
    if args.call_seconds:
        scenario.call_seconds = args.call_seconds
    if args.tool_binary and (scenario := _with_own_builds(scenario, args.tool_binary)) is None:
        return EXIT_BAD_INPUT
    from harness.scale.shard import ShardError, prepare_shard_dir, shard_from_args, shard_trials

    try:
        shard = shard_from_args(args.shard, args.shards)
    except ShardError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    only = shard_trials(scenario, shard) if shard else None
    begun = args.out and all((Path(args.out) / f).exists() for f in ("shard.json", "scenario.json"))
    if shard and begun and not args.resume:
        args.resume = args.out  # a retried pod (or CI job) continues its shard
    if args.resume:
        if args.out and Path(args.out) != Path(args.resume):
            errors.print(
                "[red]error:[/] --resume DIR writes to DIR; leave out --out or make it DIR"
            )
            return EXIT_BAD_INPUT
        from harness.runner import ResumeError, check_resumable

        try:  # before anything is touched
            check_resumable(scenario, Path(args.resume))
        except ResumeError as exc:
            errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            return EXIT_BAD_INPUT
        args.out = args.resume
    if args.backend == "docker":
        if (status := _docker_ready()) != EXIT_OK:
            return status
    else:
        need_privileges()

    from harness.programs import MissingProgram
    from harness.report.summary import build_summary, write_summary
    from harness.report.terminal import print_summary
    from harness.runner import Runner, default_jobs

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    # absolute: programs started elsewhere (prosody's plugin_paths) read paths under it
    out = Path(args.out or f"results/{scenario.name}-{stamp}").absolute()
    if shard:
        try:
            prepare_shard_dir(out, scenario, shard)
        except ShardError as exc:
            errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            return EXIT_BAD_INPUT
        console.print(f"shard {shard}: {len(only or [])} trials", highlight=False)

    def on_trial(result) -> None:
        progress.update(
            task,
            advance=1,
            description=f"{result.censor}/{result.tool}/{result.app} #{result.trial}: "
            f"{result.outcome}",
        )

    def on_retry(result) -> None:
        fault = result.fault.kind if result.fault else result.error
        console.print(
            f"harness fault in {result.censor}/{result.tool}/{result.app} #{result.trial} "
            f"(attempt {result.attempt}): {fault}; trying again",
            highlight=False,
            markup=False,
        )

    runner = Runner(
        scenario,
        out,
        backend=args.backend,
        on_trial=on_trial,
        on_retry=on_retry,
        resume=bool(args.resume),
        jobs=args.jobs or default_jobs(),
        retries=args.retries,
        only=only,
    )
    recorded = runner.recorded() if args.resume else []  # read once, here for the count
    total = len(set(runner.trial_keys()) - {r.key for r in recorded})
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task(scenario.name, total=total)

    try:
        with progress:
            results = runner.run()
        for warning in runner.resume_warnings:
            errors.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    except MissingProgram as exc:
        errors.print(f"[red]error:[/] {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        errors.print(f"[yellow]interrupted[/]; trials so far are in {runner.results_path}")
        return EXIT_INTERRUPTED
    # A shard holds part of each cell: `gatecrash merge` judges the expectations.
    judged = scenario.model_copy(update={"expect": []}) if shard else scenario
    summary = build_summary(judged, runner.run_id, args.backend, results)
    write_summary(out / "summary.json", summary)
    print_summary(summary, console)
    _print_tool_versions(scenario, results)
    _write_html_report(out / "report.html", summary, results, scenario)
    console.print(
        f"results: {out}/results.jsonl, {out}/summary.json, {out}/report.html", highlight=False
    )
    return _scored_status(summary)


def _with_own_builds(scenario, specs: list[str]):
    """The scenario with `--tool-binary NAME=PATH` builds in place of the packaged programs;
    None (after saying why) when one does not fit."""
    from harness.tools.own_build import OwnBuildError
    from harness.tools.variant import with_binaries

    builds = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            errors.print(f"[red]error:[/] --tool-binary takes NAME=PATH, got {escape(spec)!r}")
            return None
        builds[name] = path
    try:
        return with_binaries(scenario, builds)
    except OwnBuildError as exc:
        errors.print(f"[red]error:[/] --tool-binary: {escape(str(exc))}", soft_wrap=True)
        return None


def _print_tool_versions(scenario, results: list) -> None:
    """Which program (and which own build) each tool column ran."""
    from harness.tools.variant import version_lines

    for line in version_lines(scenario, results):
        console.print(f"tool {line}", highlight=False, markup=False, soft_wrap=True)


def _docker_ready() -> int:
    """The Docker backend's preconditions: the daemon answers and the images exist (built
    here, with a progress display, when missing). Checked before anything is created."""
    from harness.images import DockerUnavailable, ImagesMissing, ensure_images_with_progress

    try:
        result = ensure_images_with_progress(console)
    except (DockerUnavailable, ImagesMissing) as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    if result.node == "built":
        console.print(f"built the node image in {result.node_s:.0f} s", highlight=False)
    return EXIT_OK


def cmd_images_build(args: argparse.Namespace) -> int:
    from harness.images import DockerUnavailable, ImagesMissing, ensure_images_with_progress

    try:
        result = ensure_images_with_progress(console, rebuild=args.rebuild)
    except (DockerUnavailable, ImagesMissing) as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    base = f"base: {result.base} ({result.base_s:.1f} s)"
    console.print(f"{base}, node: {result.node} ({result.node_s:.1f} s)", highlight=False)
    for tag, size in result.sizes.items():
        console.print(f"  {tag}: {size / 1e6:.0f} MB", highlight=False)
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from harness.doctor import diagnose, print_diagnosis

    backends = diagnose()
    print_diagnosis(backends, console)
    return EXIT_OK if any(b.works for b in backends) else EXIT_BAD_INPUT


EXIT_CLEAN_INCOMPLETE = 1  # `clean`: something could not be removed (each one is listed)


def cmd_clean(args: argparse.Namespace) -> int:
    """Remove what dead runs left; every object that will not go is listed with the
    reason and a command that removes it, and only then is the exit status non-zero."""
    need_privileges()
    from harness.topology.cleanup import clean

    report = clean(force=args.force)

    def say(line: str) -> None:
        console.print(line, highlight=False, markup=False, soft_wrap=True)

    say(
        f"removed {len(report.namespaces)} namespaces, {report.processes} processes, "
        f"{len(report.files)} files, {len(report.docker)} docker objects"
    )
    for run in report.skipped_live_runs:
        say(f"left run {run} alone: it is still running (use --force)")
    if report.docker_unreachable:
        say(f"docker objects not checked: {report.docker_unreachable}")
    for leftover in report.leftovers:
        say(f"could not remove {leftover}")
        if leftover.command:
            say(f"  to remove it: {leftover.command}")
    return EXIT_OK if report.complete else EXIT_CLEAN_INCOMPLETE


def cmd_censors_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from censor_sims.technique import Technique, technique_names

    table = Table(title="censor techniques")
    for col in ("type", "what it does", "parameters"):
        table.add_column(col)
    for name in technique_names():
        model = Technique.registry[name]
        params = []
        for field_name, field in model.model_fields.items():
            if field_name == "type":
                continue
            default = "required" if field.is_required() else f"default {field.default!r}"
            params.append(f"{field_name} ({default}): {field.description or ''}")
        table.add_row(name, model.summary, "\n".join(params))
    console.print(table)
    console.print(_profiles_table())
    return EXIT_OK


def _profiles_table():
    """Shipped profiles: what each reproduces, its source, its techniques' parameters."""
    from rich.table import Table

    from censor_sims.profiles import load_profile, profile_names

    table = Table(title="censor profiles (use by name: censors: {gfw: gfw-2023})")
    for col in ("profile", "what it reproduces (source)", "techniques and parameters"):
        table.add_column(col)
    for name in profile_names():
        profile = load_profile(name)
        techniques = []
        for spec in profile.get("techniques", []):
            params = ", ".join(f"{k}={v}" for k, v in spec.items() if k not in ("type", "name"))
            techniques.append(f"{spec['type']} {spec.get('name', '')}: {params}")
        about = f"{profile.get('description', '').strip()}\n({profile.get('source', '').strip()})"
        table.add_row(name, about, "\n".join(techniques))
    return table


def _load_scored(directory: str) -> Summary | None:
    """Re-score a run directory; None (after saying why on stderr) when it cannot be."""
    from harness.report.loading import RunInputError, load_run
    from harness.report.summary import build_summary

    try:
        run = load_run(Path(directory))
    except RunInputError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return None
    for warning in run.warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    try:
        return build_summary(run.scenario, run.run_id, run.backend, run.results)
    except ValueError as exc:
        errors.print(
            f"[red]error:[/] {run.directory}/results.jsonl: {escape(str(exc))}", soft_wrap=True
        )
        return None


def _write(
    path: Path, what: str, writer: Callable[[Path, Summary], None], summary: Summary
) -> bool:
    """Run `writer`; False (after saying why) when the file cannot be written."""
    try:
        writer(path, summary)
    except OSError as exc:
        errors.print(f"[red]error:[/] cannot write {what} {path}: {exc.strerror}")
        return False
    return True


def _write_html_report(path: Path, summary: Summary, results: list, scenario) -> bool:
    """The HTML report, and the evidence of cells that did not simply work on the terminal."""
    from harness.report.evidence import gather, wants_evidence
    from harness.report.html import write_html
    from harness.report.terminal import print_evidence

    verdicts = {c.key: c.verdict for c in summary.cells}
    evidence = {r.key: gather(r) for r in results}
    wanted = [ev for key, ev in sorted(evidence.items())
              if wants_evidence(ev.trial, verdicts.get(ev.trial.cell, "works"))]  # fmt: skip
    print_evidence(wanted, console)
    scenario_json = scenario.model_dump(mode="json")
    try:
        write_html(path, summary, results, evidence, scenario_json)
    except OSError as exc:
        errors.print(f"[red]error:[/] cannot write HTML report {path}: {exc.strerror}")
        return False
    return True


def cmd_report(args: argparse.Namespace) -> int:
    """Re-score DIR with its saved scenario's thresholds and expectations."""
    from harness.report.junit import write_junit
    from harness.report.loading import load_run
    from harness.report.summary import write_summary
    from harness.report.terminal import print_summary

    summary = _load_scored(args.dir)
    if summary is None:
        return EXIT_BAD_INPUT
    json_path = Path(args.json) if args.json else Path(args.dir) / "summary.json"
    if not _write(json_path, "summary", write_summary, summary):
        return EXIT_BAD_INPUT
    if args.junit and not _write(Path(args.junit), "JUnit XML", write_junit, summary):
        return EXIT_BAD_INPUT
    print_summary(summary, console)
    run = load_run(Path(args.dir))
    _print_tool_versions(run.scenario, run.results)
    html_path = Path(args.html) if args.html else Path(args.dir) / "report.html"
    if not _write_html_report(html_path, summary, run.results, run.scenario):
        return EXIT_BAD_INPUT
    written = [str(json_path), str(html_path)] + ([args.junit] if args.junit else [])
    console.print(f"written: {', '.join(written)}", highlight=False)
    return _scored_status(summary)


def cmd_merge(args: argparse.Namespace) -> int:
    """Merge shard directories into OUT, then score and report it as one run."""
    from harness.scale.merge import MergeError, merge

    try:
        merged = merge(Path(args.out), [Path(d) for d in args.dirs], args.allow_partial)
    except (MergeError, ValueError) as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    for warning in merged.warnings:
        errors.print(f"[yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    console.print(
        f"merged {len(merged.shards)} of {merged.count} shards ({len(merged.results)} records) "
        f"of {merged.scenario.name} into {args.out}",
        highlight=False,
    )
    report = argparse.Namespace(dir=args.out, json=None, junit=args.junit, html=None)
    return cmd_report(report)


def cmd_k8s(args: argparse.Namespace) -> int:
    """Print the Kubernetes manifests that run the scenario's shards (or merge them)."""
    from harness.scale.k8s import JobOptions, render, to_yaml
    from harness.scale.shard import trial_keys

    if (scenario := _load_scenario_or_say(args.scenario)) is None:
        return EXIT_BAD_INPUT
    trials = len(trial_keys(scenario))
    if args.shards > trials:
        errors.print(f"[red]error:[/] --shards {args.shards}: the scenario has {trials} trials")
        return EXIT_BAD_INPUT
    options = JobOptions(
        scenario_name=scenario.name,
        scenario_text=Path(args.scenario).read_text(),
        shards=args.shards,
        image=args.image,
        parallelism=args.parallelism or args.shards,
        volume_claim=args.out_volume,
        name=args.name or "",
        jobs=args.jobs,
        retries=args.retries,
        backoff_limit_per_index=args.backoff_limit_per_index,
        max_failed_indexes=args.max_failed_indexes,
        allow_partial=args.allow_partial,
    )
    sys.stdout.write(to_yaml(render(options, merge=args.merge)))
    return EXIT_OK


def cmd_baseline(args: argparse.Namespace) -> int:
    from harness.report.baseline import write_baseline

    summary = _load_scored(args.dir)
    if summary is None:
        return EXIT_BAD_INPUT
    if not _write(Path(args.output), "baseline", write_baseline, summary):
        return EXIT_BAD_INPUT
    console.print(
        f"baseline of {len(summary.cells)} cells ({summary.scenario}, run "
        f"{summary.run_id}) written to {args.output}",
        highlight=False,
    )
    return EXIT_OK


def cmd_gate(args: argparse.Namespace) -> int:
    """Exit 1 when a cell regressed against the baseline, 0 otherwise."""
    from harness.report.baseline import BaselineError, compare, load_baseline
    from harness.report.terminal import print_gate

    if args.mos_margin < 0:
        errors.print("[red]error:[/] --mos-margin must not be negative")
        return EXIT_BAD_INPUT
    try:
        baseline = load_baseline(Path(args.baseline))
    except BaselineError as exc:
        errors.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return EXIT_BAD_INPUT
    summary = _load_scored(args.dir)
    if summary is None:
        return EXIT_BAD_INPUT
    if baseline.scenario != summary.scenario:
        errors.print(
            f"[yellow]warning:[/] baseline is of scenario {baseline.scenario!r}, this run of "
            f"{summary.scenario!r}; comparing cells by name"
        )
    changes = compare(baseline, summary, args.mos_margin)
    title = f"gate: {args.dir} against {args.baseline} (run {baseline.run_id or '?'})"
    print_gate(changes, console, title)
    regressed = [c for c in changes if c.fails]
    if regressed:
        console.print(
            f"[bold red]gate failed:[/] {len(regressed)} cell(s) regressed", highlight=False
        )
        return EXIT_EXPECT_FAILED
    undecided = sum(c.status == "not-decided" for c in changes)
    caveat = f", {undecided} cell(s) not decided (more trials would compare them)"
    console.print(
        f"[green]gate passed:[/] no cell regressed{caveat if undecided else ''}", highlight=False
    )
    return EXIT_OK


def _tools_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tools-dir",
        action="append",
        metavar="DIR",
        help="also load tool manifests from DIR/<tool>/tool.yaml (repeatable; "
        "env GATECRASH_TOOLS_DIR too)",
    )


def _register_tools_dirs(dirs: list[str]) -> bool:
    """Register manifest tools from --tools-dir; False (after saying why) on a problem."""
    from harness import registry
    from harness.manifests import ManifestError

    problems = list(registry.TOOLS_DIR_PROBLEMS)
    for directory in dirs:
        try:
            registry.add_tools_dir(directory)
        except ManifestError as exc:
            problems += exc.problems
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return not problems


def cmd_tools_list(args: argparse.Namespace) -> int:
    from rich.table import Table

    from harness.tools.listing import tool_rows

    if args.options:
        return _print_tool_options(args.options)

    table = Table(title="circumvention tools")
    for col in ("tool", "version", "protocols", "exposes", "udp", "defined in"):
        table.add_column(col)
    for row in tool_rows():
        kind = row.kind if row.kind == "python" else os.path.relpath(row.kind)
        notes = f"\n[dim]{escape(row.notes)}[/]" if row.notes else ""
        table.add_row(row.name, escape(row.version), escape(", ".join(row.protocols)),
                      row.exposes, row.udp + notes, escape(kind))  # fmt: skip
    console.print(table)
    return EXIT_OK


def _print_tool_options(name: str) -> int:
    """The options a scenario may give tool NAME: `{name: NAME, OPTION: VALUE}`."""
    from rich.table import Table

    from harness import registry
    from harness.errors import did_you_mean
    from harness.tools.options import describe
    from harness.tools.variant import tool_class

    if name not in registry.TOOLS:
        errors.print(
            f"[red]error:[/] unknown tool {name!r}{did_you_mean(name, registry.TOOLS)}; valid "
            f"tools: {', '.join(sorted(registry.TOOLS))}",
            soft_wrap=True,
        )
        return EXIT_BAD_INPUT
    cls = tool_class(name)
    rows = describe(cls.Options)
    table = Table(title=f"options of {name} (tools: [{{name: {name}, OPTION: VALUE}}])")
    for col in ("option", "values", "default", "what it sets"):
        table.add_column(col)
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table if rows else f"{name} takes no options", highlight=False)
    programs = ", ".join(cls.programs) or "none (gatecrash's own code)"
    console.print(f"own build (binary: PATH, --tool-binary {name}=PATH) replaces: {programs}",
                  highlight=False)  # fmt: skip
    return EXIT_OK


def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatecrash", description="Does your circumvention tool still carry a call?"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario suite")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", help="results directory (default results/NAME-TIME)")
    run.add_argument(
        "--backend", default="netns", choices=["netns", "docker"], help="topology backend"
    )
    run.add_argument("--trials", type=int, help="override trials per cell")
    run.add_argument("--call-seconds", type=float, help="override call length (s)")
    run.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR: skip trials already recorded, append the rest",
    )
    run.add_argument(
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="trials side by side (default: two per core, as memory allows at 256 MiB a trial; "
        "1 runs them in turn)",
    )
    run.add_argument(
        "--retries",
        type=_non_negative_int,
        default=2,
        metavar="N",
        help="attempts after a harness fault, per trial (default 2); faults never count as "
        "censorship",
    )
    run.add_argument(
        "--shard",
        metavar="I/N",
        help="run only shard I (0-based) of N: the trials are split by expected cost, the same "
        "way in every process; OUT/shard.json says which shard it holds",
    )
    run.add_argument(
        "--shards",
        type=_positive_int,
        metavar="N",
        help="split into N shards and run the one numbered by $JOB_COMPLETION_INDEX "
        "(a Kubernetes Indexed Job)",
    )
    run.add_argument(
        "--tool-binary",
        action="append",
        metavar="NAME=PATH",
        help="run your own build of tool NAME (every column running it, or the column labelled "
        "NAME): an executable, or a directory holding the tool's programs (repeatable)",
    )
    run.set_defaults(func=cmd_run)
    _tools_dir_option(run)
    mrg = sub.add_parser("merge", help="merge shard result directories into one run, and score it")
    mrg.add_argument("out", help="new results directory")
    mrg.add_argument("dirs", nargs="+", metavar="DIR", help="shard directories (--shard I/N runs)")
    mrg.add_argument(
        "--allow-partial",
        action="store_true",
        help="score what there is when shards or trials are missing (a warning, not an error)",
    )
    mrg.add_argument("--junit", metavar="FILE", help="also write JUnit XML, one test per cell")
    mrg.set_defaults(func=cmd_merge)
    _tools_dir_option(mrg)
    k8s = sub.add_parser("k8s", help="print Kubernetes manifests that run the shards")
    k8s.add_argument("scenario", help="scenario YAML file (put in a ConfigMap)")
    k8s.add_argument("--shards", type=_positive_int, required=True, metavar="N")
    k8s.add_argument(
        "--image", required=True, help="an image holding gatecrash and the node image's programs"
    )
    k8s.add_argument("--parallelism", type=_positive_int, metavar="P", help="default: N")
    k8s.add_argument(
        "--out-volume",
        default="gatecrash-results",
        metavar="PVC",
        help="PersistentVolumeClaim (ReadWriteMany) mounted at /results (default %(default)s)",
    )
    k8s.add_argument("--name", help="Job name (default gatecrash-SCENARIO)")
    k8s.add_argument("--jobs", type=_positive_int, default=1, help="trials side by side per pod")
    k8s.add_argument("--retries", type=_non_negative_int, default=2, help="as for `run`")
    k8s.add_argument(
        "--backoff-limit-per-index",
        type=_non_negative_int,
        default=1,
        help="pod retries of one shard after failures other than exit 2/3 (default 1)",
    )
    k8s.add_argument(
        "--max-failed-indexes",
        type=_positive_int,
        help="fail the Job once this many shards failed (default: a quarter of N, at least 1)",
    )
    k8s.add_argument(
        "--merge", action="store_true", help="print the merge Job (apply it after the shards)"
    )
    k8s.add_argument(
        "--allow-partial", action="store_true", help="the merge Job scores missing shards too"
    )
    k8s.set_defaults(func=cmd_k8s)
    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("files", nargs="+")
    val.set_defaults(func=cmd_validate)
    _tools_dir_option(val)
    cln = sub.add_parser("clean", help="remove what crashed runs left behind")
    cln.add_argument("--force", action="store_true", help="also remove runs that look alive")
    cln.set_defaults(func=cmd_clean)
    images = sub.add_parser("images", help="the Docker backend's images")
    images_sub = images.add_subparsers(dest="images_command", required=True)
    build = images_sub.add_parser("build", help="build missing images (base made offline)")
    build.add_argument(
        "--rebuild", action="store_true", help="build the node image anew, without the cache"
    )
    build.set_defaults(func=cmd_images_build)
    from harness.reproduce.command import add_parser as add_reproduce_parser

    add_reproduce_parser(sub)
    doctor = sub.add_parser("doctor", help="which backends work on this machine, and why not")
    doctor.set_defaults(func=cmd_doctor)
    rep = sub.add_parser("report", help="re-score a results directory and print the table")
    rep.add_argument("dir", help="results directory (results.jsonl + scenario.json)")
    rep.add_argument(
        "--json", metavar="FILE", help="write the summary here (default DIR/summary.json)"
    )
    rep.add_argument("--junit", metavar="FILE", help="also write JUnit XML, one test per cell")
    rep.add_argument(
        "--html", metavar="FILE", help="write the HTML report here (default DIR/report.html)"
    )
    rep.set_defaults(func=cmd_report)
    base = sub.add_parser("baseline", help="save a run's per-cell scores as a baseline")
    base.add_argument("dir", help="results directory")
    base.add_argument("-o", "--output", required=True, metavar="FILE", help="baseline file")
    base.set_defaults(func=cmd_baseline)
    gate = sub.add_parser("gate", help="exit 1 when a run regressed against a baseline")
    gate.add_argument("dir", help="results directory")
    gate.add_argument("--baseline", required=True, metavar="FILE", help="from `gatecrash baseline`")
    gate.add_argument(
        "--mos-margin",
        type=float,
        default=0.3,
        help="median MOS may fall by this much before it counts as a regression (default 0.3)",
    )
    gate.set_defaults(func=cmd_gate)
    censors = sub.add_parser("censors", help="censor techniques")
    censors_sub = censors.add_subparsers(dest="censors_command", required=True)
    censors_sub.add_parser("list", help="techniques and their parameters").set_defaults(
        func=cmd_censors_list
    )
    tools = sub.add_parser("tools", help="circumvention tools")
    tools_sub = tools.add_subparsers(dest="tools_command", required=True)
    tools_list = tools_sub.add_parser("list", help="tools, versions, protocols, UDP capability")
    tools_list.add_argument(
        "--options", metavar="NAME", help="the options tool NAME takes in a scenario"
    )
    tools_list.set_defaults(func=cmd_tools_list)
    _tools_dir_option(tools_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "tools_dir") and not _register_tools_dirs(args.tools_dir or []):
        return EXIT_BAD_INPUT
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
