"""Paths under a run's output directory that cannot leave it.

Labels are validated when a scenario loads (harness.fields); this is the second line of
defence for everything that joins them into a path: whatever the parts, the result must
resolve inside the output directory, or nothing is written.
"""

from __future__ import annotations

from pathlib import Path


class OutsideOutDir(ValueError):
    """A path built from labels would resolve outside the run's output directory."""


def inside(out_dir: str | Path, *parts: str) -> Path:
    """out_dir/parts..., or OutsideOutDir when it resolves elsewhere ('..', an absolute
    part, a symlink in the tree). Returns the path as joined, not resolved, so callers keep
    the form of out_dir they were given."""
    root = Path(out_dir).resolve()
    path = Path(out_dir).joinpath(*parts)
    resolved = path.resolve()
    if resolved != root and root not in resolved.parents:
        raise OutsideOutDir(
            f"{'/'.join(parts)!r} resolves to {resolved}, outside the output directory "
            f"{root}: refusing to write there"
        )
    return path
