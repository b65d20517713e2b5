"""The project stands alone: no file cites a notes folder outside the repository or a path
of one machine; sources are cited as papers, standards and the programs' own manuals."""

from __future__ import annotations

import re
import subprocess

from tests.conftest import REPO

FORBIDDEN = re.compile(r"shared/reference|\.\./shared|/work/|/root/\.pyenv")


def test_no_file_cites_outside_the_repository() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    hits = []
    for name in files:
        path = REPO / name
        if not path.is_file() or name == "tests/unit/test_standalone.py":
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        hits += [
            f"{name}:{number}: {line.strip()}"
            for number, line in enumerate(text.splitlines(), 1)
            if FORBIDDEN.search(line)
        ]
    assert hits == []
