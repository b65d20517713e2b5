"""Plug-ins found by name: apps and tools are registered as "module:Class" strings so that
listing and validating names costs no import of their (heavier) code."""

from __future__ import annotations

import importlib
from typing import Any

APPS: dict[str, str] = {
    "sip": "harness.apps.sip.app:SipApp",
    "xmpp": "harness.apps.xmpp.app:XmppApp",
}

TOOLS: dict[str, str] = {
    "direct": "harness.tools.direct:Direct",
    "shadowsocks": "harness.tools.shadowsocks:Shadowsocks",
    "psiphon-like": "harness.tools.psiphon_like.tool:PsiphonLike",
}


def load(table: dict[str, str], name: str) -> Any:
    if name not in table:
        raise KeyError(f"unknown name {name!r}; valid: {', '.join(sorted(table))}")
    module, _, attr = table[name].partition(":")
    return getattr(importlib.import_module(module), attr)
