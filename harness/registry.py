"""Plug-ins found by name: apps and tools are registered as "module:Class" strings so that
listing and validating names costs no import of their (heavier) code."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

APPS: dict[str, str] = {
    "sip": "harness.apps.sip.app:SipApp",
    "xmpp": "harness.apps.xmpp.app:XmppApp",
    "baresip": "harness.apps.baresip.app:BaresipApp",
    "signal-like": "harness.apps.messengers.signal_like:SignalLikeApp",
    "whatsapp-like": "harness.apps.messengers.whatsapp_like:WhatsAppLikeApp",
    "telegram-like": "harness.apps.messengers.telegram_like:TelegramLikeApp",
    "webrtc": "harness.apps.webrtc.app:WebRtcApp",
    "web": "harness.apps.web.app:WebApp",
    "download": "harness.apps.download.app:DownloadApp",
    "dns": "harness.apps.dns.app:DnsApp",
}

TOOLS: dict[str, str] = {
    "direct": "harness.tools.direct:Direct",
    "shadowsocks": "harness.tools.shadowsocks:Shadowsocks",
    "psiphon-like": "harness.tools.psiphon_like.tool:PsiphonLike",
    "psiphon-like-tls": "harness.tools.psiphon_like.variants:PsiphonLikeTls",
    "psiphon-like-meek": "harness.tools.psiphon_like.variants:PsiphonLikeMeek",
    "sing-box-hysteria2": "harness.tools.sing_box:SingBoxHysteria2",
    "sing-box-vless": "harness.tools.sing_box:SingBoxVless",
    "openvpn-udp": "harness.tools.openvpn:OpenVpnUdp",
    "openvpn-tcp": "harness.tools.openvpn:OpenVpnTcp",
    "wireguard": "harness.tools.wireguard:WireGuard",
}


# Tools described by a manifest (harness/tools/manifest.py) are entries "manifest:PATH".
MANIFEST_PREFIX = "manifest:"
TOOLS_DIR_PROBLEMS: list[str] = []  # GATECRASH_TOOLS_DIR entries that could not be read


def add_tools_dir(directory: str | Path) -> list[str]:
    """Register every manifest under `directory` by name; raises ManifestError when one
    reuses the name of another tool."""
    from harness.tools.manifest import ManifestError, discover

    added = []
    for name, path in discover(Path(directory)).items():
        entry = MANIFEST_PREFIX + str(path.resolve())
        if TOOLS.get(name, entry) != entry:
            raise ManifestError([f"{path}:1:1: name: tool {name!r} already exists ({TOOLS[name]})"])
        TOOLS[name] = entry
        added.append(name)
    return added


def _add_default_tools_dirs() -> None:
    from harness.tools.manifest import ManifestError, tools_dirs

    for directory in tools_dirs():
        try:
            add_tools_dir(directory)
        except ManifestError as exc:
            TOOLS_DIR_PROBLEMS.extend(exc.problems)


_add_default_tools_dirs()


def load(table: dict[str, str], name: str) -> Any:
    if name not in table:
        raise KeyError(f"unknown name {name!r}; valid: {', '.join(sorted(table))}")
    if table[name].startswith(MANIFEST_PREFIX):
        from harness.tools.manifest_tool import ManifestTool

        return ManifestTool.for_file(table[name][len(MANIFEST_PREFIX) :])
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)
