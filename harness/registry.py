"""Plug-ins found by name: apps and tools are registered as "module:ATTR" strings so that
listing and validating names costs no import of their (heavier) code. An app's entry names
its AppPlugin, a tool's entry its class."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness.apps.base import App
    from harness.apps.plugin import AppKind, AppPlugin

# app name -> "module:ATTR" of its AppPlugin (harness/apps/plugin.py): a light object that
# names the app's class, kind and options without importing the app's code.
APPS: dict[str, str] = {
    "sip": "harness.apps.sip.plugin:PLUGIN",
    "xmpp": "harness.apps.xmpp.plugin:PLUGIN",
    "baresip": "harness.apps.baresip.plugin:PLUGIN",
    "signal-like": "harness.apps.messengers.plugin:SIGNAL_LIKE",
    "whatsapp-like": "harness.apps.messengers.plugin:WHATSAPP_LIKE",
    "telegram-like": "harness.apps.messengers.plugin:TELEGRAM_LIKE",
    "webrtc": "harness.apps.webrtc.plugin:PLUGIN",
    "web": "harness.apps.web.plugin:PLUGIN",
    "download": "harness.apps.download.plugin:PLUGIN",
    "dns": "harness.apps.dns.plugin:PLUGIN",
    "office-vpn": "harness.apps.office_vpn.plugin:PLUGIN",
    "conference": "harness.apps.conference.plugin:PLUGIN",
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
MANIFEST_RUNNER = "harness.tools.manifest_tool:ManifestTool"  # named like every plug-in
TOOLS_DIR_PROBLEMS: list[str] = []  # GATECRASH_TOOLS_DIR entries that could not be read


def add_tools_dir(directory: str | Path) -> list[str]:
    """Register every manifest under `directory` by name; raises ManifestError when one
    reuses the name of another tool."""
    from harness.manifests import ManifestError, discover

    added = []
    for name, path in discover(Path(directory)).items():
        entry = MANIFEST_PREFIX + str(path.resolve())
        if TOOLS.get(name, entry) != entry:
            raise ManifestError([f"{path}:1:1: name: tool {name!r} already exists ({TOOLS[name]})"])
        TOOLS[name] = entry
        added.append(name)
    return added


def _add_default_tools_dirs() -> None:
    from harness.manifests import ManifestError, tools_dirs

    for directory in tools_dirs():
        try:
            add_tools_dir(directory)
        except ManifestError as exc:
            TOOLS_DIR_PROBLEMS.extend(exc.problems)


_add_default_tools_dirs()


def app_plugin(name: str) -> AppPlugin:
    """What app `name` declares (kind, options, class); imports only its package."""
    return load(APPS, name)


def app_class(name: str) -> type[App]:
    return app_plugin(name).load()


def app_plugins(names: Iterable[str] | None = None) -> dict[str, AppPlugin]:
    """name -> plugin, for `names` or every registered app, in registry order."""
    return {name: app_plugin(name) for name in (APPS if names is None else names)}


def app_kinds(names: Iterable[str]) -> dict[str, AppKind]:
    """What scoring is given: each app's kind, for cells whose trials carry no metrics."""
    return {name: plugin.kind for name, plugin in app_plugins(names).items()}


def load(table: dict[str, str], name: str) -> Any:
    if name not in table:
        raise KeyError(f"unknown name {name!r}; valid: {', '.join(sorted(table))}")
    if table[name].startswith(MANIFEST_PREFIX):
        return _attribute(MANIFEST_RUNNER).for_file(table[name][len(MANIFEST_PREFIX) :])
    return _attribute(table[name])


def _attribute(entry: str) -> Any:
    module, _, attr = entry.partition(":")
    return getattr(importlib.import_module(module), attr)
