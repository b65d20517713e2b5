"""`gatecrash reproduce`: published censorship measurements beside ours, one module per case
(each builds its own topology and censor, sends real traffic, returns rows)."""

from __future__ import annotations

import importlib
from types import ModuleType

# Case name -> module, in the order they run and are listed.
CASES: dict[str, str] = {
    "iran-protocol-filter-2020": "iran_protocol_filter_2020",
    "russia-tspu-2021": "russia_tspu_2021",
    "gfw-fet-2023": "gfw_fet_2023",
    "voip-blocker": "voip_blocker",
    "kazakhstan-mitm-2019": "kazakhstan_mitm_2019",
    "gfw-http-residual": "gfw_http_residual",
    "gfw-quic-sni-2025": "gfw_quic_sni_2025",
    "gfw-shadowsocks-probing-2020": "gfw_shadowsocks_probing_2020",
}


def case_module(name: str) -> ModuleType:
    return importlib.import_module(f"harness.reproduce.{CASES[name]}")
