"""Published JSON Schemas of gatecrash's output files, shipped as package data.

Every version stays published: a summary.json written by an older gatecrash is checked
against the schema of its own `schema_version`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SUMMARY_SCHEMA_PATHS = {
    1: Path(__file__).with_name("summary-v1.json"),
    2: Path(__file__).with_name("summary-v2.json"),
}
LATEST_SUMMARY_VERSION = max(SUMMARY_SCHEMA_PATHS)
SUMMARY_SCHEMA_PATH = SUMMARY_SCHEMA_PATHS[LATEST_SUMMARY_VERSION]


def summary_schema(version: int = LATEST_SUMMARY_VERSION) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) that summary.json of `version` follows."""
    try:
        path = SUMMARY_SCHEMA_PATHS[version]
    except KeyError:
        known = ", ".join(map(str, SUMMARY_SCHEMA_PATHS))
        raise ValueError(f"no summary schema version {version!r} (published: {known})") from None
    return json.loads(path.read_text())
