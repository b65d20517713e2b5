"""Errors about the user's input files: one line per problem, `FILE:LINE:COL: message`, so
that every bad key, choice or value is reported at once and can be found in the editor."""

from __future__ import annotations


class InputProblems(Exception):
    """Bad input; `problems` are 'FILE:LINE:COL: message' lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
