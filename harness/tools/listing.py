"""`gatecrash tools list`: every registered tool (Python classes and manifests) with the
version its installed binary reports, its protocols, what it exposes and its UDP capability,
so a user sees what a run would use before running it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness import registry
from harness.manifests import ManifestError
from harness.programs import MissingProgram
from harness.tools.versions import VERSION_COMMANDS, version_of

# Tools that are gatecrash's own Python code: their version is gatecrash's.
PURE_PYTHON = {"direct", "psiphon-like", "psiphon-like-tls", "psiphon-like-meek"}


@dataclass
class ToolRow:
    name: str
    kind: str  # "python" or the manifest path
    version: str
    protocols: list[str]
    exposes: str
    udp: str
    notes: str = ""


def _version(cls: Any) -> str:
    try:
        cls().check_installed()
    except MissingProgram as exc:
        return f"not installed: {exc}"
    if cls.name in PURE_PYTHON:
        return "built in (Python)"
    argv = getattr(cls, "version_command", None)
    if callable(argv):
        argv = argv()
    if argv is None:
        argv = next((VERSION_COMMANDS[b] for b in cls.binaries if b in VERSION_COMMANDS), None)
    return version_of(list(argv)) if argv else "installed (no version command declared)"


def tool_rows(names: list[str] | None = None) -> list[ToolRow]:
    rows = []
    for name in sorted(names or registry.TOOLS):
        entry = registry.TOOLS[name]
        kind = (
            entry.removeprefix(registry.MANIFEST_PREFIX)
            if entry.startswith(registry.MANIFEST_PREFIX)
            else "python"
        )
        try:
            cls = registry.load(registry.TOOLS, name)
        except ManifestError as exc:
            rows.append(ToolRow(name, kind, "invalid manifest", [], "?", "?", exc.problems[0]))
            continue
        except ImportError as exc:
            rows.append(ToolRow(name, kind, f"cannot import: {exc}", [], "?", "?"))
            continue
        manifest = getattr(cls, "manifest", None)
        rows.append(
            ToolRow(
                name=name,
                kind=kind,
                version=_version(cls),
                protocols=list(cls.protocols or ["?"]),
                exposes=cls.exposes,
                udp=cls.udp,
                notes=manifest.notes if manifest is not None else "",
            )
        )
    return rows
