"""An agent started before its trial needs it: the interpreter starts and imports the
agent's module (0.2-1.5 s for our agents: asyncio, slixmpp, aiortc) while the trial is still
setting up, then waits for its arguments, one JSON list on stdin, and runs the agent's
main() with them. The app hands them over when the trial reaches the agent, so imports
never sit between the tool being ready and the call.

    python -m harness.apps.warm MODULE      (then, on stdin: ["caller", "--user", ...])
"""

from __future__ import annotations

import importlib
import json
import sys


def main() -> int:
    module = importlib.import_module(sys.argv[1])
    line = sys.stdin.readline()
    if not line:
        return 0  # the trial ended before it needed this agent
    argv = json.loads(line)
    sys.argv = [module.__name__, *argv]
    return int(module.main(argv) or 0)


if __name__ == "__main__":
    sys.exit(main())
