"""Published JSON Schemas of gatecrash's output files, shipped as package data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUMMARY_SCHEMA_PATH = Path(__file__).with_name("summary-v1.json")


def summary_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that summary.json version 1 follows."""
    return json.loads(SUMMARY_SCHEMA_PATH.read_text())
