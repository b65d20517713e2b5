"""Root for the commands that build namespaces, or else the same command again inside a
user namespace where the kernel allows one (a private /run and /etc/netns go with it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from rich.console import Console

EXIT_BAD_INPUT = 2
_errors = Console(stderr=True)


def need_privileges() -> None:
    """Root, or else re-run inside a user namespace where the kernel allows it."""
    if os.geteuid() == 0:
        return
    if os.environ.get("GATECRASH_IN_USERNS"):
        _errors.print("[red]error:[/] still not root inside the user namespace")
        sys.exit(EXIT_BAD_INPUT)
    unshare = shutil.which("unshare")
    probe = (
        subprocess.run(
            [unshare or "unshare", "-Urnm", "true"], capture_output=True, text=True, check=False
        )
        if unshare
        else None
    )
    if probe is None or probe.returncode != 0:
        _errors.print(
            "[red]error:[/] gatecrash creates network namespaces: run it as root, or enable "
            "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
            "user.max_user_namespaces > 0) so it can run inside `unshare -Urnm`."
            + (f"\nunshare said: {probe.stderr.strip()}" if probe else "")
        )
        sys.exit(EXIT_BAD_INPUT)
    # Private /run and /etc/netns in our own mount namespace: everything the run creates
    # disappears with it, even after SIGKILL.
    script = (
        "mount -t tmpfs gatecrash /run && mkdir -p /run/netns && "
        "if [ -d /etc/netns ]; then mount -t tmpfs gatecrash /etc/netns; fi && "
        'exec "$@"'
    )
    os.environ["GATECRASH_IN_USERNS"] = "1"
    os.execvp(
        "unshare",
        ["unshare", "-Urnm", "--propagation", "private", "sh", "-c", script, "sh",
         sys.executable, "-m", "harness.cli", *sys.argv[1:]],
    )  # fmt: skip
