"""Matching names (SNI, DNS qnames) the way censors' lists do: exact, suffix or regex."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, model_validator

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


class NameMatching(BaseModel):
    """The `names` + `match` pair of name-based techniques, validated once for all of them
    (after the model is built, so `match` is known whatever the key order)."""

    names: list[str] = Field(min_length=1, description="names to match (SNI, DNS query)")
    match: MatchMode = Field(default="suffix", description="exact, suffix or regex")

    @model_validator(mode="after")
    def _regexes_compile(self):
        check_regexes(self.names, self.match)
        return self

    def matching(self, name: str | None) -> str | None:
        return name_matches(name, self.names, self.match)
