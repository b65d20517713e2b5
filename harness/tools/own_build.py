"""A developer's own build of a tool (`binary:` in a scenario, `--tool-binary NAME=PATH`).

The build runs in place of the packaged program: PATH is an executable file that replaces
the tool's one program (obfs4proxy, v2ray, openvpn...), or a directory holding programs of
the tool by their names (a shadowsocks build's `ss-server` and `ss-local`). Its version is
asked the way `tools list` asks the packaged one, so a report says which build it measured.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from harness.programs import MissingProgram


class OwnBuildError(ValueError):
    """The given build cannot replace the tool's programs; the message says why."""


def absolute(path: str) -> str:
    """An absolute path without resolving symlinks (a multi-call binary reads argv[0])."""
    return os.path.abspath(os.path.expanduser(path))


def path_problem(path: str) -> str | None:
    """Why PATH is no runnable build, or None."""
    p = Path(path)
    if not p.exists():
        return f"{path} does not exist"
    if p.is_dir():
        return None if os.access(p, os.R_OK | os.X_OK) else f"{path}: cannot read the directory"
    if not os.access(p, os.X_OK):
        return f"{path} is not executable (chmod +x {path})"
    return None


def replacements(
    tool: str, programs: tuple[str, ...], path: str, main: str | None = None
) -> dict[str, str]:
    """program -> path of the build, for a tool whose own build may replace `programs`; a
    file replaces `main` (by default the only program)."""
    if not programs:
        raise OwnBuildError(
            f"tool {tool!r} runs no program of its own (it is gatecrash's Python code or the "
            "control), so there is no build to put in its place"
        )
    if (why := path_problem(path)) is not None:
        raise OwnBuildError(why)
    p = Path(path)
    if p.is_dir():
        found = {name: str(p / name) for name in programs if os.access(p / name, os.X_OK)}
        if not found:
            raise OwnBuildError(
                f"{path} holds none of {tool}'s programs ({', '.join(programs)}) as an "
                "executable file"
            )
        return found
    main = main or (programs[0] if len(programs) == 1 else None)
    if main is None:
        raise OwnBuildError(
            f"tool {tool!r} runs {len(programs)} programs ({', '.join(programs)}): give a "
            "directory holding them by these names"
        )
    return {main: str(p)}


def check_runnable(replaced: dict[str, str]) -> None:
    """Before a run: each build is still there and executable (MissingProgram if not)."""
    for program, path in replaced.items():
        if (why := path_problem(path)) is not None:
            raise MissingProgram(f"own build of {program}: {why}")


def version_of_build(argv: tuple[str, ...]) -> str:
    """The version line of `argv` (cached per program file and its modification time)."""
    try:
        stamp = os.stat(argv[0]).st_mtime_ns if os.sep in argv[0] else 0
    except OSError:
        stamp = -1
    return _version(argv, stamp)


@lru_cache(maxsize=64)
def _version(argv: tuple[str, ...], stamp: int) -> str:
    from harness.tools.versions import version_of

    return version_of(list(argv))
