"""Tool manifests on disk, found by name without being validated: the built-in ones,
GATECRASH_TOOLS_DIR and directories given on the command line. The registry lists them from
here; harness/tools/manifest.py validates one when a scenario uses it."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from harness.errors import InputProblems

MANIFEST_NAME = "tool.yaml"
ENV_TOOLS_DIR = "GATECRASH_TOOLS_DIR"
BUILTIN_DIR = Path(__file__).resolve().parent / "tools"  # harness/tools/<tool>/tool.yaml


class ManifestError(InputProblems):
    """A bad manifest; `problems` are 'FILE:LINE:COL: where: message' lines."""


def tools_dirs(extra: list[str | Path] | None = None) -> list[Path]:
    """Where manifests are looked for: the built-in tools, GATECRASH_TOOLS_DIR (a PATH-like
    list) and directories given on the command line."""
    dirs = [BUILTIN_DIR]
    dirs += [Path(d) for d in os.environ.get(ENV_TOOLS_DIR, "").split(os.pathsep) if d]
    dirs += [Path(d) for d in extra or []]
    return dirs


def manifest_name(path: Path) -> str:
    """The `name:` of a manifest without validating it (a broken manifest is still found by
    its directory name, and its errors are reported when it is used)."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):  # not UTF-8 is a ValueError
        data = None
    name = data.get("name") if isinstance(data, dict) else None
    return name if isinstance(name, str) and name else path.parent.name


def discover(directory: Path) -> dict[str, Path]:
    """name -> manifest path for `directory/<tool>/tool.yaml` (and `directory/tool.yaml`)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ManifestError([f"{directory}: tools directory does not exist"])
    found: dict[str, Path] = {}
    for path in sorted([directory / MANIFEST_NAME, *directory.glob(f"*/{MANIFEST_NAME}")]):
        if not path.is_file():
            continue
        name = manifest_name(path)
        if name in found:
            raise ManifestError(
                [f"{path}:1:1: name: tool {name!r} is also defined in {found[name]}"]
            )
        found[name] = path
    return found
