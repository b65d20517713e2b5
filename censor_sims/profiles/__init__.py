"""Shipped censor profiles: YAML files composing techniques, each citing its source.
A scenario names one as a string (`censors: {voip: voip-blocker}`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from harness.errors import decode_text, did_you_mean

PROFILE_DIR = Path(__file__).parent


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str) -> dict[str, Any]:
    """A shipped profile by name; only the names listed are looked up, so a name is never
    a path (`../x`) out of the profile directory."""
    shipped = profile_names()
    if name not in shipped:
        raise ValueError(
            f"unknown censor profile {name!r}{did_you_mean(name, shipped)}; "
            f"shipped: {', '.join(shipped)}"
        )
    path = PROFILE_DIR / f"{name}.yaml"
    try:
        return yaml.safe_load(decode_text(path.read_bytes(), path))
    except yaml.YAMLError as exc:
        raise ValueError(f"{path}: not valid YAML: {exc}") from None
