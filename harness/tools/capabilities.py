"""What a tool offers to an app, in one place: what it exposes (a SOCKS5 port, a routed tun
device, or nothing because it is `direct`), read by scenario validation, the runner and
`gatecrash tools list` alike.

`X+tun` (harness/tools/tun_mode.py) routes the client host through a socks5 tool, so it
exposes `tun`. An app whose plugin says `needs_routed_tool` (it has no proxy setting, as
baresip) runs only through tools that route the host's packets: a proxy-only tool is
refused by name rather than letting the app silently go direct.
"""

from __future__ import annotations

# What a tool exposes (harness.tools.base.Tool.exposes) that an unmodified program can use.
ROUTED = ("none", "tun")


class NeedsRoutedTool(ValueError):
    """An app with no proxy setting was combined with a tool that only offers a proxy."""


def tool_exposes(tool: str) -> str:
    """What the tool named in a scenario exposes (`X+tun` exposes tun)."""
    from harness import registry
    from harness.tools.tun_mode import split_name

    base, tun = split_name(tool)
    if tun:
        return "tun"
    return str(registry.load(registry.TOOLS, base).exposes)


def check_routed(app: str, tool: str) -> None:
    """Refuse `tool` for `app` (an app with no proxy setting) unless it routes the host."""
    exposes = tool_exposes(tool)
    if exposes not in ROUTED:
        raise NeedsRoutedTool(
            f"app {app!r} cannot run through tool {tool!r}: {app} has no proxy setting "
            f"and {tool} only exposes {exposes}; use {tool}+tun (tun mode routes the client "
            "host through it) or a routed tool (direct, openvpn, wireguard)"
        )
