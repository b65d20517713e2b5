"""Programs gatecrash runs: a missing one is an error that names the package to install."""

from __future__ import annotations

import shutil


class MissingProgram(RuntimeError):
    """A program gatecrash needs is not installed; the message names the package."""


def require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise MissingProgram(f"{binary} not found: install the Debian package {package!r}")
    return path
