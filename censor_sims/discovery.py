"""Plug-in modules found by looking: a package imports each of its own modules, so adding a
technique or an analyzer is adding its module, with no hand-kept import list to forget."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable


def import_submodules(package: str, path: Iterable[str], skip: tuple[str, ...] = ()) -> list[str]:
    """Import every module of `package` (at `path`) whose name does not start with `_` and
    is not in `skip`, in name order; return their names."""
    found = sorted(m.name for m in pkgutil.iter_modules(list(path)) if not m.name.startswith("_"))
    names = [name for name in found if name not in skip]
    for name in names:
        importlib.import_module(f"{package}.{name}")
    return names
