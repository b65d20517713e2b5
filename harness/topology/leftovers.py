"""What a tear-down could not remove, with the reason and a command that would.

A leftover never stops a tear-down or `gatecrash clean`: the object is reported and left
named (netns) or labelled (Docker) so that a later `gatecrash clean` finds it, and it is
never reused, since every trial attempt has names of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Leftover:
    kind: str  # namespace, process, file, container, network, volume, docker
    name: str
    reason: str
    command: str = ""  # a shell command that removes it (empty: none known)

    def __str__(self) -> str:
        """`network NAME: reason`: the form trial records keep."""
        return f"{self.kind} {self.name}: {self.reason}"


def one_line(text: str, limit: int = 300) -> str:
    """An error message as one line, for a report."""
    return " ".join(text.split())[:limit]
