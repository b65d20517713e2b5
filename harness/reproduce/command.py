"""`gatecrash reproduce [CASE...] [--list] [--out DIR] [--quick]`: run the cases, print the
table, write DIR/reproduce.json; exit 0 when every row agrees, 1 if any does not, 2 on bad
input (an unknown case: the valid ones are listed, with a did-you-mean)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from harness.errors import did_you_mean
from harness.reproduce import CASES, case_module

EXIT_OK, EXIT_DISAGREE, EXIT_BAD_INPUT = 0, 1, 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    rep = sub.add_parser("reproduce", help="published censorship measurements, beside ours")
    rep.add_argument("cases", nargs="*", metavar="CASE", help="cases to run (default: all)")
    rep.add_argument("--list", action="store_true", help="list the cases and exit")
    rep.add_argument("--out", help="results directory (default results/reproduce-TIME)")
    rep.add_argument(
        "--quick",
        action="store_true",
        help="reduced counts and short residual windows (seconds per case, for CI); "
        "each case says what it shortened",
    )
    rep.set_defaults(func=cmd_reproduce)


def list_cases() -> str:
    return "\n".join(f"{name:28} {case_module(name).TITLE}" for name in CASES)


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.list:
        print(list_cases())
        return EXIT_OK
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        for name in unknown:
            print(f"error: unknown case {name!r}{did_you_mean(name, CASES)}", file=sys.stderr)
        print("valid cases:\n" + list_cases(), file=sys.stderr)
        return EXIT_BAD_INPUT
    from harness.privileges import need_privileges
    from harness.reproduce.core import render, write_json
    from harness.reproduce.runner import run_cases

    need_privileges()
    out = Path(args.out or f"results/reproduce-{time.strftime('%Y%m%d-%H%M%S')}")
    reports = run_cases(args.cases or list(CASES), args.quick, out)
    print(render(reports))
    write_json(out / "reproduce.json", reports)
    disagree = [f"{r.name}: {row.quantity}" for r in reports for row in r.rows if not row.agrees]
    errored = [f"{r.name}: {r.error}" for r in reports if r.error]
    print(f"results: {out / 'reproduce.json'}")
    for line in errored:
        print(f"case failed to run: {line}")
    for line in disagree:
        print(f"does not agree: {line}")
    return EXIT_OK if all(r.agrees for r in reports) else EXIT_DISAGREE
