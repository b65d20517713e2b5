"""Errors about the user's input files: one line per problem, `FILE:LINE:COL: message`, so
that every bad key, choice or value is reported at once and can be found in the editor."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


class InputProblems(Exception):
    """Bad input; `problems` are 'FILE:LINE:COL: message' lines."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class LocatedError(ValueError):
    """A model-level check's error that knows which key below the model it is about, so the
    report can point at that key's line rather than at the model's."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def did_you_mean(word: object, choices: Iterable[str]) -> str:
    """The hint " (did you mean 'x'?)" when a choice is close to `word` (a typo), or ''."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def not_utf8(source: object, exc: UnicodeDecodeError) -> str:
    """The one-line problem for a file that failed to decode: which byte, where."""
    return f"{source}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})"


def decode_text(data: bytes, source: object) -> str:
    """`data` as text, or ValueError naming the first byte that makes it no UTF-8 text (an
    undecodable byte, or a NUL: a binary file). A decode error would escape as a traceback."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(not_utf8(source, exc)) from None
    if (nul := data.find(b"\0")) >= 0:
        raise ValueError(f"{source}: not UTF-8 text (NUL byte at offset {nul}: a binary file?)")
    return text


def read_text(path: Path, error: type[InputProblems]) -> str:
    """The text of an input file, or `error` saying why it cannot be read as UTF-8 text."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise error([f"{path}: cannot read: {exc.strerror}"]) from None
    try:
        return decode_text(data, path)
    except ValueError as exc:
        raise error([str(exc)]) from None


def read_json(path: Path, what: str, error: type[Exception]) -> Any:
    """The JSON content of a file the user named (a summary, a baseline), or `error` with
    one line saying why not: missing, unreadable, not UTF-8, or not JSON (line:col)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise error(not_utf8(path, exc)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise error(
            f"{path}:{exc.lineno}:{exc.colno}: {what} is not valid JSON: {exc.msg}"
        ) from None
