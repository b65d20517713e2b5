"""The censor's evidence: one JSON line per action, appended as it happens."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any


class EventLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def emit(self, technique: str, action: str, **fields: Any) -> None:
        event = {"time": round(time.time(), 6), "technique": technique, "action": action, **fields}
        line = json.dumps(event, sort_keys=False)
        with self._lock, self.path.open("a") as f:
            f.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]
