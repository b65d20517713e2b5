"""Matching names (SNI, DNS qnames) the way censors' lists do: exact, suffix or regex."""

from __future__ import annotations

import re
from typing import Literal

MatchMode = Literal["exact", "suffix", "regex"]


def name_matches(name: str | None, patterns: list[str], mode: MatchMode) -> str | None:
    """The pattern that matched `name` (case-insensitive, trailing dot ignored), or None."""
    if not name:
        return None
    name = name.lower().rstrip(".")
    for pattern in patterns:
        p = pattern.lower().rstrip(".")
        if mode == "exact" and name == p:
            return pattern
        if mode == "suffix" and (name == p or name.endswith("." + p)):
            return pattern
        if mode == "regex" and re.search(pattern, name):
            return pattern
    return None


def check_regexes(patterns: list[str], mode: MatchMode) -> None:
    if mode != "regex":
        return
    for p in patterns:
        try:
            re.compile(p)
        except re.error as exc:
            raise ValueError(f"pattern {p!r} is not a valid regex: {exc}") from None
