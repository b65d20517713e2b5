"""Which tools can carry baresip: it knows nothing of proxies, so only tools that route the
client host's packets (a VPN, or a socks5 tool in tun mode, `<tool>+tun`) or no tool at all.
A proxy-only tool is refused by name rather than letting baresip silently go direct."""

from __future__ import annotations

# What a tool exposes (harness.tools.base.Tool.exposes) that an unmodified program can use.
ROUTED = ("none", "tun")


class NeedsRoutedTool(ValueError):
    """baresip was combined with a tool that only offers a proxy port."""


def tool_exposes(tool: str) -> str:
    """What the tool named in a scenario exposes (`X+tun` exposes tun)."""
    from harness import registry
    from harness.tools.tun_mode import split_name

    base, tun = split_name(tool)
    if tun:
        return "tun"
    return str(registry.load(registry.TOOLS, base).exposes)


def check_tool(tool: str) -> None:
    exposes = tool_exposes(tool)
    if exposes not in ROUTED:
        raise NeedsRoutedTool(
            f"app 'baresip' cannot run through tool {tool!r}: baresip has no proxy setting "
            f"and {tool} only exposes {exposes}; use {tool}+tun (tun mode routes the client "
            "host through it) or a routed tool (direct, openvpn, wireguard)"
        )
