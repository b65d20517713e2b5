"""Value types every input file shares: ports, and labels that end up in paths.

A label (a censor, tool, app or technique name, a manifest's file name) becomes a directory
or file name under the run's output directory, so only a safe set is accepted: letters,
digits and `- _ . +`, not starting with `.` or `-`, no `..`, at most 64 characters.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

LABEL_MAX = 64
_LABEL_CHARS = re.compile(r"[A-Za-z0-9_.+-]*")
_SPACED_LABEL_CHARS = re.compile(r"[A-Za-z0-9_.+ -]*")
LABEL_RULE = f"use letters, digits and - _ . + (not first: . or -), at most {LABEL_MAX} characters"
PORT_MIN, PORT_MAX = 1, 65535


def label_problem(value: str, spaces: bool = False) -> str | None:
    """Why `value` is not a safe label, or None."""
    if not value:
        return "it is empty"
    if len(value) > LABEL_MAX:
        return f"it is {len(value)} characters long"
    allowed = _SPACED_LABEL_CHARS if spaces else _LABEL_CHARS
    if bad := sorted(set(allowed.sub("", value))):
        return f"it contains {', '.join(repr(c) for c in bad)}"
    if ".." in value:
        return "it contains '..'"
    if value[0] in ".-":
        return f"it starts with {value[0]!r}"
    return None


def check_label(value: str, what: str = "name", spaces: bool = False) -> str:
    if (why := label_problem(value, spaces)) is not None:
        rule = LABEL_RULE.replace("+ (", "+ and spaces (") if spaces else LABEL_RULE
        raise ValueError(f"{what} {value!r} is not a safe name: {why}; {rule}")
    return value


def _labelled(what: str, spaces: bool = False) -> Any:
    return AfterValidator(lambda value: check_label(value, what, spaces))


def _not_bool(value: Any) -> Any:
    """YAML's `yes`/`true` would otherwise pass as the number 1."""
    if isinstance(value, bool):
        raise ValueError(f"port {value!r} is not a number")
    return value


def check_port(port: int) -> int:
    if not PORT_MIN <= port <= PORT_MAX:
        raise ValueError(f"port {port} is out of range {PORT_MIN}-{PORT_MAX}")
    return port


Port = Annotated[int, BeforeValidator(_not_bool), AfterValidator(check_port)]
CensorName = Annotated[str, _labelled("censor name")]
ToolName = Annotated[str, _labelled("tool name")]
AppName = Annotated[str, _labelled("app name")]
# A technique's `name`: its label in events and in the censor's work files (spaces allowed).
TechniqueLabel = Annotated[str, _labelled("technique name", spaces=True)]
FileName = Annotated[str, _labelled("file name")]
ScenarioName = Annotated[str, _labelled("scenario name")]
