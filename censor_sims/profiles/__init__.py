"""Shipped censor profiles: YAML files composing techniques, each citing its source.
A scenario names one as a string (`censors: {voip: voip-blocker}`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent


def profile_names() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name: str) -> dict[str, Any]:
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown censor profile {name!r}; shipped: {', '.join(profile_names())}")
    return yaml.safe_load(path.read_text())
