"""`gatecrash tools list`: every registered tool (Python classes and manifests) with the
version its installed binary reports, its protocols, what it exposes and its UDP capability,
so a user sees what a run would use before running it."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from typing import Any

from harness import registry
from harness.programs import MissingProgram
from harness.tools.manifest import ManifestError

# How to ask a binary its version (never `-h` blindly: `wireguard-go -h` creates a TUN).
VERSION_COMMANDS: dict[str, list[str]] = {
    "ss-server": ["ss-server", "-h"],
    "ss-local": ["ss-local", "-h"],
    "obfs4proxy": ["obfs4proxy", "-version"],
    "v2ray": ["v2ray", "-version"],
    "trojan": ["trojan", "-v"],
    "openvpn": ["openvpn", "--version"],
    "wireguard-go": ["wireguard-go", "--version"],
    "stunnel4": ["stunnel4", "-version"],
}
# 'stunnel 5.68 on x86_64-pc-linux-gnu ...' -> 'stunnel 5.68'
VERSION_LINE = re.compile(r"^(.*?\d+(?:\.\d+)+\S*)")
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


def version_of(argv: list[str]) -> str:
    """The first output line of `argv` that carries a version number, cut after it."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        if match := VERSION_LINE.match(line.strip()):
            return match.group(1).removeprefix("Welcome to ")
    return "unknown (no version in its output)"


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
