"""Tool manifests: shipped ones validate; bad ones are reported as FILE:LINE:COL with the key
and the valid choices; the Tor PT / SIP003 conventions produce their environment; templates
leave JSON braces alone; discovery and scenario validation see manifest tools by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import registry
from harness.manifests import ManifestError, discover
from harness.programs import MissingProgram
from harness.scenario import ScenarioError, parse_scenario
from harness.tools.manifest import load_manifest, parse_manifest
from harness.tools.manifest_tool import (
    ManifestTool,
    Renderer,
    convention_env,
    convention_exports,
)

REPO = Path(__file__).resolve().parents[2]

GOOD = """\
name: demo
protocols: [demo]
binaries: {demo-server: demo-pkg}
endpoint: "127.0.0.1:{port.local}"
capabilities: {udp: none}
ports: {server: 9000, local: 1080}
secrets: {password: hex}
files:
  c.json: '{"server": "{proxy_addr}", "port": {port.server}, "key": "{export.key}"}'
server:
  - name: srv
    command: [demo-server, -p, "{port.server}", -k, "{secret.password}"]
    ready: {line: 'listening', port: "{port.server}"}
    export: {key: 'key=(\\S+)'}
client:
  - name: cli
    command: [demo-client, -c, "{file.c.json}"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "t.yaml")
    return info.value.problems


def test_shipped_and_example_manifests_validate() -> None:
    paths = sorted(REPO.glob("harness/tools/*/tool.yaml")) + sorted(
        REPO.glob("examples/tools/*/tool.yaml")
    )
    names = {load_manifest(p).name for p in paths}
    assert {"obfs4", "v2ray", "trojan", "shadowsocks-v2ray-plugin", "stunnel"} <= names


def test_good_manifest_parses() -> None:
    m = parse_manifest(GOOD)
    assert m.capabilities.udp == "none" and m.server[0].exports() == ["key"]


def test_unknown_key_names_line_and_valid_keys() -> None:
    (msg,) = problems(GOOD.replace("    ready: {line:", "    redy: {line:"))
    assert msg.startswith("t.yaml:13:5: server.0.redy: unknown key 'redy'")
    assert "ready" in msg and "command" in msg and "tor_pt_server" in msg


def test_bad_udp_capability_lists_choices() -> None:
    (msg,) = problems(GOOD.replace("udp: none", "udp: maybe"))
    assert msg.startswith("t.yaml:5:")
    assert "'maybe' is not allowed" in msg
    assert "'native'" in msg and "'udpgw'" in msg and "'none'" in msg


def test_bad_exposes_lists_choices() -> None:
    (msg,) = problems(GOOD.replace('endpoint: "', 'exposes: socks4\nendpoint: "'))
    assert msg.startswith("t.yaml:4:") and "socks5" in msg and "http-connect" in msg


def test_missing_required_key() -> None:
    text = GOOD[: GOOD.index("client:")]
    (msg,) = problems(text)
    assert "missing required key 'client'" in msg


def test_unknown_variable_names_line_and_valid_variables() -> None:
    (msg,) = problems(GOOD.replace("{secret.password}", "{secret.pasword}"))
    assert msg.startswith("t.yaml:12:")
    assert "unknown variable {secret.pasword}" in msg
    assert "secret.password" in msg and "port.server" in msg and "ROLE_addr" in msg


def test_export_used_before_it_exists() -> None:
    text = GOOD.replace('[demo-server, -p, "{port.server}"', '[demo-server, -x, "{export.key}"')
    (msg,) = problems(text)
    assert "t.yaml:12:" in msg and "{export.key} is exported by a process that starts later" in msg


def test_export_regex_needs_one_group() -> None:
    (msg,) = problems(GOOD.replace("'key=(\\S+)'", "'key=\\S+'"))
    assert "t.yaml:14:" in msg and "exactly one group" in msg


def test_non_socks_exposes_needs_python() -> None:
    (msg,) = problems(GOOD.replace('endpoint: "', 'exposes: tun\nendpoint: "'))
    assert "python" in msg and "tun" in msg


def test_invalid_yaml_and_duplicate_key() -> None:
    (msg,) = problems("name: [unclosed\n")
    assert msg.startswith("t.yaml:") and "not valid YAML" in msg
    (msg,) = problems(GOOD + "name: again\n")
    assert "key 'name' appears twice" in msg


def test_templates_keep_json_braces() -> None:
    render = Renderer({"proxy_addr": "10.0.0.1", "port.server": "9000"})
    text = '{"a": {"b": "{proxy_addr}", "p": {port.server}}, "c": {}}'
    assert render(text) == '{"a": {"b": "10.0.0.1", "p": 9000}, "c": {}}'
    assert not render.ready("{export.cert}")


def test_tor_pt_and_sip003_environment(tmp_path: Path) -> None:
    m = parse_manifest(
        GOOD.replace(
            "    export: {key: 'key=(\\S+)'}\n",
            "    tor_pt_server: {transport: obfs4, bindaddr: '{proxy_addr}:{port.server}',"
            " orport: '127.0.0.1:9050'}\n",
        )
        .replace("{export.key}", "{export.pt_args}")
        .replace(
            "    command: [demo-client",
            "    sip003: {remote: '{proxy_addr}:{port.server}', local: '127.0.0.1:{port.local}',"
            " options: 'path=/ws'}\n    command: [demo-client",
        )
    )
    render = Renderer({"proxy_addr": "10.0.0.1", "port.server": "9000", "port.local": "1080"})
    env = convention_env(m.server[0], tmp_path, render)
    assert env["TOR_PT_MANAGED_TRANSPORT_VER"] == "1"
    assert env["TOR_PT_SERVER_BINDADDR"] == "obfs4-10.0.0.1:9000"
    assert env["TOR_PT_ORPORT"] == "127.0.0.1:9050"
    assert env["TOR_PT_EXIT_ON_STDIN_CLOSE"] == "1"
    sip = convention_env(m.client[0], tmp_path, render)
    assert sip == {"SS_REMOTE_HOST": "10.0.0.1", "SS_REMOTE_PORT": "9000",
                   "SS_LOCAL_HOST": "127.0.0.1", "SS_LOCAL_PORT": "1080",
                   "SS_PLUGIN_OPTIONS": "path=/ws"}  # fmt: skip
    out = "VERSION 1\nSMETHOD obfs4 10.0.0.1:9000 ARGS:cert=AbC+/x,iat-mode=0\nSMETHODS DONE\n"
    assert convention_exports(m.server[0], out) == {
        "pt_args": "cert=AbC+/x,iat-mode=0",
        "pt_socks_username": "cert=AbC+/x;iat-mode=0",
    }


def test_missing_binary_names_the_package(tmp_path: Path) -> None:
    path = tmp_path / "demo" / "tool.yaml"
    path.parent.mkdir()
    path.write_text(GOOD.replace("demo-server: demo-pkg", "gatecrash-no-such-binary: demo-pkg"))
    with pytest.raises(MissingProgram, match=r"gatecrash-no-such-binary.*'demo-pkg'"):
        ManifestTool.for_file(path)().check_installed()


def test_discovery_rejects_two_tools_with_one_name(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "tool.yaml").write_text(GOOD)
    with pytest.raises(ManifestError, match="'demo' is also defined"):
        discover(tmp_path)


def test_scenario_accepts_manifest_tools_and_lists_them() -> None:
    text = "name: s\napps: [sip]\ntools: [{tools}]\ncensors: {{open: []}}\n"
    assert parse_scenario(text.format(tools="obfs4, v2ray")).tools == ["obfs4", "v2ray"]
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text.format(tools="obfs5"), "s.yaml")
    (msg,) = info.value.problems
    assert msg.startswith("s.yaml:3:") and "obfs4" in msg and "trojan" in msg


def test_scenario_reports_a_broken_manifest_with_its_line(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "demo" / "tool.yaml"
    path.parent.mkdir()
    path.write_text(GOOD.replace("udp: none", "udp: maybe"))
    monkeypatch.setitem(registry.TOOLS, "demo", registry.MANIFEST_PREFIX + str(path))
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: s\napps: [sip]\ntools: [demo]\ncensors: {open: []}\n", "s.yaml")
    (msg,) = info.value.problems
    assert msg.startswith("s.yaml:3:") and f"{path}:5:" in msg and "'native'" in msg


def test_python_hook_class_is_loaded_from_next_to_the_manifest(tmp_path: Path) -> None:
    tool_dir = tmp_path / "demo"
    tool_dir.mkdir()
    text = GOOD.replace("-c, ", "-c, '{extra}', ") + "python: hook.py:Hooked\nvariables: [extra]\n"
    (tool_dir / "tool.yaml").write_text(text)
    (tool_dir / "hook.py").write_text(
        "from harness.tools.manifest_tool import ManifestTool\n"
        "class Hooked(ManifestTool):\n"
        "    def prepare(self, ctx, values):\n"
        "        values['extra'] = 'x'\n"
    )
    cls = ManifestTool.for_file(tool_dir / "tool.yaml")
    assert cls.__mro__[1].__name__ == "Hooked"
    assert (cls.name, cls.udp, cls.exposes, cls.protocols) == ("demo", "none", "socks5", ["demo"])
    (tool_dir / "tool.yaml").write_text(GOOD + "python: hook.py:Missing\n")
    with pytest.raises(ManifestError, match=r"cannot load 'hook\.py:Missing'"):
        ManifestTool.for_file(tool_dir / "tool.yaml")
