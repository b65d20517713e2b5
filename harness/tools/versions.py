"""Asking an installed program its version: what `tools list`, a run's results
(`tool_version`) and an own build's check all report."""

from __future__ import annotations

import re
import subprocess

# How to ask a binary its version (never `-h` blindly: `wireguard-go -h` creates a TUN).
VERSION_COMMANDS: dict[str, list[str]] = {
    "ss-server": ["ss-server", "-h"],
    "ss-local": ["ss-local", "-h"],
    "obfs4proxy": ["obfs4proxy", "-version"],
    "v2ray": ["v2ray", "-version"],
    "trojan": ["trojan", "-v"],
    "openvpn": ["openvpn", "--version"],
    "wireguard-go": ["wireguard-go", "--version"],
    "stunnel4": ["stunnel4", "-version"],
}
# 'stunnel 5.68 on x86_64-pc-linux-gnu ...' -> 'stunnel 5.68'
VERSION_LINE = re.compile(r"^(.*?\d+(?:\.\d+)+\S*)")


def version_of(argv: list[str]) -> str:
    """The first output line of `argv` that carries a version number, cut after it."""
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    for line in (proc.stdout + "\n" + proc.stderr).splitlines():
        if match := VERSION_LINE.match(line.strip()):
            return match.group(1).removeprefix("Welcome to ")
    return "unknown (no version in its output)"
