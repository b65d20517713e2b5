"""The `gatecrash` command: run, validate, clean.

Exit codes: 0 every expectation held, 1 one failed, 2 bad input or setup problem,
130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

EXIT_OK, EXIT_EXPECT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

console = Console(stderr=False)
errors = Console(stderr=True)
if not console.is_terminal:
    console.width = 160  # logs and CI: keep the score table on one line per cell


def _need_privileges() -> None:
    """Root, or else re-run inside a user namespace where the kernel allows it."""
    if os.geteuid() == 0:
        return
    if os.environ.get("GATECRASH_IN_USERNS"):
        errors.print("[red]error:[/] still not root inside the user namespace")
        sys.exit(EXIT_BAD_INPUT)
    unshare = shutil.which("unshare")
    probe = (
        subprocess.run(
            [unshare or "unshare", "-Urnm", "true"], capture_output=True, text=True, check=False
        )
        if unshare
        else None
    )
    if probe is None or probe.returncode != 0:
        errors.print(
            "[red]error:[/] gatecrash creates network namespaces: run it as root, or enable "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0) so it can run inside `unshare -Urnm`."
            + (f"\nunshare said: {probe.stderr.strip()}" if probe else "")
        )
        sys.exit(EXIT_BAD_INPUT)
    # Private /run and /etc/netns in our own mount namespace: everything the run creates
    # disappears with it, even after SIGKILL.
    script = (
        "mount -t tmpfs gatecrash /run && mkdir -p /run/netns && "
        "if [ -d /etc/netns ]; then mount -t tmpfs gatecrash /etc/netns; fi && "
        'exec "$@"'
    )
    os.environ["GATECRASH_IN_USERNS"] = "1"
    os.execvp(
        "unshare",
        ["unshare", "-Urnm", "--propagation", "private", "sh", "-c", script, "sh",
         sys.executable, "-m", "harness.cli", *sys.argv[1:]],
    )  # fmt: skip


def cmd_validate(args: argparse.Namespace) -> int:
    from harness.scenario import ScenarioError, load_scenario

    status = EXIT_OK
    for path in args.files:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            status = EXIT_BAD_INPUT
            continue
        console.print(
            f"{path}: ok ({len(scenario.cells())} cells x {scenario.trials} trials)",
            highlight=False,
        )
    return status


def cmd_run(args: argparse.Namespace) -> int:
    from harness.scenario import ScenarioError, load_scenario

    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.trials:
        scenario.trials = args.trials
    if args.call_seconds:
        scenario.call_seconds = args.call_seconds
    _need_privileges()

    from harness.report.summary import build_summary, write_summary
    from harness.report.terminal import print_summary
    from harness.runner import Runner
    from harness.topology.dns import MissingProgram

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = Path(args.out or f"results/{scenario.name}-{stamp}")
    total = len(scenario.cells()) * scenario.trials
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = progress.add_task(scenario.name, total=total)

    def on_trial(result) -> None:
        progress.update(
            task,
            advance=1,
            description=f"{result.censor}/{result.tool}/{result.app} #{result.trial}: "
            f"{result.outcome}",
        )

    runner = Runner(scenario, out, backend=args.backend, on_trial=on_trial)
    try:
        with progress:
            results = runner.run()
    except MissingProgram as exc:
        errors.print(f"[red]error:[/] {exc}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        errors.print(f"[yellow]interrupted[/]; trials so far are in {runner.results_path}")
        return EXIT_INTERRUPTED
    summary = build_summary(scenario, runner.run_id, args.backend, results)
    write_summary(out / "summary.json", summary)
    print_summary(summary, console)
    console.print(f"results: {out}/results.jsonl, {out}/summary.json", highlight=False)
    return EXIT_OK if all(e["met"] for e in summary["expectations"]) else EXIT_EXPECT_FAILED


def cmd_clean(args: argparse.Namespace) -> int:
    _need_privileges()
    from harness.topology.cleanup import clean

    report = clean(force=args.force)
    console.print(
        f"removed {len(report.namespaces)} namespaces, {report.processes} processes, "
        f"{len(report.files)} files",
        highlight=False,
    )
    for run in report.skipped_live_runs:
        console.print(f"left run {run} alone: it is still running (use --force)")
    return EXIT_OK


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
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gatecrash", description="Does your circumvention tool still carry a call?"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a scenario suite")
    run.add_argument("scenario", help="scenario YAML file")
    run.add_argument("--out", help="results directory (default results/NAME-TIME)")
    run.add_argument("--backend", default="netns", choices=["netns"], help="topology backend")
    run.add_argument("--trials", type=int, help="override trials per cell")
    run.add_argument("--call-seconds", type=float, help="override call length (s)")
    run.set_defaults(func=cmd_run)
    val = sub.add_parser("validate", help="check scenario files without running them")
    val.add_argument("files", nargs="+")
    val.set_defaults(func=cmd_validate)
    cln = sub.add_parser("clean", help="remove what crashed runs left behind")
    cln.add_argument("--force", action="store_true", help="also remove runs that look alive")
    cln.set_defaults(func=cmd_clean)
    censors = sub.add_parser("censors", help="censor techniques")
    censors_sub = censors.add_subparsers(dest="censors_command", required=True)
    censors_sub.add_parser("list", help="techniques and their parameters").set_defaults(
        func=cmd_censors_list
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
