"""YAML input with positions: every key and item's line and column, so that any input file
(a scenario, a tool manifest) reports a problem as FILE:LINE:COL, and the wording of the
range and choice errors they share."""

from __future__ import annotations

import re
from typing import Any

import yaml

from harness.errors import InputProblems

Marks = dict[tuple[Any, ...], tuple[int, int]]


def walk(
    node: yaml.Node,
    path: tuple[Any, ...],
    marks: Marks,
    problems: list[str],
    src: str,
    walked: set[int] | None = None,
) -> None:
    """Record the line and column of every key and item, and report keys given twice. An
    aliased node is walked once (its aliases' errors point at the alias): walking every
    alias of nested aliases (a "billion laughs" file) would take exponential time."""
    marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    walked = set() if walked is None else walked
    if id(node) in walked:
        return
    walked.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in seen:
                line, col = key_node.start_mark.line + 1, key_node.start_mark.column + 1
                problems.append(f"{src}:{line}:{col}: key {key!r} appears twice")
            seen.add(key)
            marks[(*path, key)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            walk(value_node, (*path, key), marks, problems, src, walked)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            walk(item, (*path, i), marks, problems, src, walked)


def mark_for(loc: tuple[Any, ...], marks: Marks) -> tuple[int, int]:
    for n in range(len(loc), -1, -1):
        if loc[:n] in marks:
            return marks[loc[:n]]
    return (1, 1)


BOUNDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}


def number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def range_message(err: dict[str, Any], bounds: list[str]) -> str:
    """'1.5 is out of range: must be at least 0 and at most 1' for a number error."""
    if not bounds:
        bounds = [f"{BOUNDS[k]} {number_text(v)}" for k, v in err["ctx"].items() if k in BOUNDS]
    return f"{err['input']!r} is out of range: must be {' and '.join(bounds)}"


def literal_choices(err: dict[str, Any]) -> list[str]:
    return re.findall(r"'([^']*)'", str(err.get("ctx", {}).get("expected", "")))


def load_yaml(text: str, source: str, error: type[InputProblems]) -> tuple[Any, Any]:
    """(node tree, data) of a YAML text; `error` naming FILE:LINE:COL when it is not YAML.
    The node tree gives every value its line and column for later messages."""
    try:
        return yaml.compose(text, Loader=yaml.SafeLoader), yaml.safe_load(text)
    except RecursionError:
        raise error([f"{source}: not valid YAML: nested too deeply"]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise error([f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}"]) from None
