"""`gatecrash tools list` rows: versions asked of the installed binaries, UDP claims and
protocols from the manifests, and a clear "not installed" naming the package."""

from __future__ import annotations

import sys
from pathlib import Path

from harness import registry
from harness.tools.listing import tool_rows
from harness.tools.versions import VERSION_LINE, version_of


def test_version_line_is_cut_after_the_number() -> None:
    cases = {
        "stunnel 5.68 on x86_64-pc-linux-gnu platform": "stunnel 5.68",
        "V2Ray 4.34.0 (user) 20230518-074445 (go1.19.8 linux/amd64)": "V2Ray 4.34.0",
        "obfs4proxy-0.0.14": "obfs4proxy-0.0.14",
        "Welcome to trojan 1.16.0": "Welcome to trojan 1.16.0",
    }
    for line, want in cases.items():
        match = VERSION_LINE.match(line)
        assert match and match.group(1) == want
    assert VERSION_LINE.match("Initializing inetd mode configuration") is None


def test_version_of_reads_a_real_program() -> None:
    assert version_of([sys.executable, "--version"]).startswith("Python 3.")


def test_manifest_tools_are_listed_with_their_claims() -> None:
    rows = {r.name: r for r in tool_rows(["obfs4", "v2ray", "trojan", "shadowsocks-v2ray-plugin"])}
    assert rows["obfs4"].udp == "none" and rows["obfs4"].version == "obfs4proxy-0.0.14"
    assert rows["v2ray"].udp == "native" and rows["v2ray"].version == "V2Ray 4.34.0"
    assert rows["trojan"].version == "trojan 1.16.0"
    assert "plugin" in rows["shadowsocks-v2ray-plugin"].notes
    assert all(r.kind.endswith("tool.yaml") and r.exposes == "socks5" for r in rows.values())
    python = {r.name: r for r in tool_rows(["direct", "shadowsocks"])}
    assert python["shadowsocks"].version == "shadowsocks-libev 3.3.5"
    assert python["direct"].kind == "python"


def test_missing_binary_is_not_installed_with_package(tmp_path: Path, monkeypatch) -> None:
    tool = tmp_path / "ghost" / "tool.yaml"
    tool.parent.mkdir()
    tool.write_text(
        "name: ghost\nprotocols: [x]\nbinaries: {gatecrash-ghost-bin: ghost-pkg}\n"
        "endpoint: '127.0.0.1:1'\nserver: [{name: s, command: [gatecrash-ghost-bin]}]\n"
        "client: [{name: c, command: [gatecrash-ghost-bin]}]\n"
    )
    monkeypatch.setitem(registry.TOOLS, "ghost", registry.MANIFEST_PREFIX + str(tool))
    (row,) = tool_rows(["ghost"])
    assert row.version.startswith("not installed") and "'ghost-pkg'" in row.version
