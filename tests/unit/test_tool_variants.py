"""Tool entries in scenarios: variants side by side under their `as:` names, options and own
builds checked with FILE:LINE:COL errors that list what is valid, scenario.json read back as
the same entries, a resumed run refused when a tool's options or build changed, and the
version of an own build asked of that build."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.runner import resume_problems
from harness.scenario import Scenario, ScenarioError, parse_scenario, scenario_model
from harness.tools.own_build import OwnBuildError
from harness.tools.variant import ToolEntry, build_tool, version_lines, with_binaries

SCENARIO = """\
name: t
trials: 1
apps: [xmpp]
tools: [direct, {name: psiphon-like-tls, as: tls-cdn, sni: cdn.example.test}, TOOL]
censors: {open: []}
"""


def scenario(tool: str = "{name: obfs4, iat-mode: 1}") -> Scenario:
    return parse_scenario(SCENARIO.replace("TOOL", tool), "s.yaml")


def problem(tool: str) -> str:
    with pytest.raises(ScenarioError) as info:
        scenario(tool)
    (line,) = info.value.problems
    return line


def at(tool: str, key: str | None = None) -> str:
    """FILE:LINE:COL of `key` in the third tool entry (of the entry itself when None)."""
    line = SCENARIO.splitlines()[3].replace("TOOL", tool)
    start = line.rindex(tool)
    return f"s.yaml:4:{start + 1 + (tool.index(key + ':') if key else 0)}"


def test_variants_are_columns_side_by_side_under_their_labels() -> None:
    s = scenario("{name: psiphon-like-tls, as: tls-blocked, sni: blocked.example.test}")
    assert [tool for _, tool, _ in s.cells()] == ["direct", "tls-cdn", "tls-blocked"]
    variants = s.tool_variants()
    assert variants["tls-cdn"].name == variants["tls-blocked"].name == "psiphon-like-tls"
    assert build_tool(s, "tls-cdn").options.sni == "cdn.example.test"  # type: ignore[attr-defined]
    assert build_tool(s, "tls-blocked").options.sni == "blocked.example.test"  # type: ignore[attr-defined]


def test_an_expectation_names_a_variant_by_its_label() -> None:
    text = SCENARIO.replace("TOOL", "obfs4") + (
        "expect: [{censor: open, tool: tls-cdn, app: xmpp, verdict: works}]\n"
    )
    assert parse_scenario(text).expect[0].tool == "tls-cdn"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text.replace("tool: tls-cdn", "tool: psiphon-like-tls"), "s.yaml")
    assert "tool 'psiphon-like-tls' is not in this scenario" in info.value.problems[0]
    assert "valid: direct, tls-cdn, obfs4" in info.value.problems[0]


def test_scenario_json_reads_back_as_the_same_entries() -> None:
    s = scenario("{name: shadowsocks, cipher: aes-256-gcm, binary: /usr/bin}")
    dumped = s.model_dump(mode="json")["tools"]
    assert dumped == [
        "direct",
        {"name": "psiphon-like-tls", "as": "tls-cdn", "sni": "cdn.example.test"},
        {"name": "shadowsocks", "binary": "/usr/bin", "cipher": "aes-256-gcm"},
    ]
    assert scenario_model().model_validate_json(s.model_dump_json()) == s


def test_unknown_option_lists_the_valid_ones() -> None:
    tool = "{name: obfs4, iat-mod: 1}"
    assert problem(tool) == (
        f"{at(tool, 'iat-mod')}: tools.2.iat-mod: unknown option 'iat-mod' for tool 'obfs4' "
        "(did you mean 'iat-mode'?); valid options: iat-mode"
    )
    tool = "{name: direct, sni: x}"
    assert problem(tool) == (
        f"{at(tool, 'sni')}: tools.2.sni: unknown option 'sni' for tool 'direct'; it takes no "
        "options"
    )


def test_bad_values_say_what_is_valid() -> None:
    tool = "{name: obfs4, iat-mode: 3}"
    assert problem(tool) == (
        f"{at(tool, 'iat-mode')}: tools.2.iat-mode: option 'iat-mode' of tool 'obfs4': 3 is "
        "not allowed; valid values: 0, 1, 2"
    )
    tool = "{name: shadowsocks, cipher: aes-256-gmc}"
    assert problem(tool).startswith(
        f"{at(tool, 'cipher')}: tools.2.cipher: option 'cipher' of tool 'shadowsocks': "
        "'aes-256-gmc' is not allowed (did you mean 'aes-256-gcm'?); valid values: rc4-md5, "
        "aes-128-gcm,"
    )
    tool = "{name: wireguard, mtu: 9000}"
    assert problem(tool) == (
        f"{at(tool, 'mtu')}: tools.2.mtu: option 'mtu' of tool 'wireguard': 9000 is out of range: "
        "must be at most 1500"
    )
    tool = "{name: psiphon-like, padding-min: 100, padding-max: 50}"
    assert problem(tool) == (
        f"{at(tool)}: tools.2: options of tool 'psiphon-like': padding-min (100) is more than "
        "padding-max (50)"
    )
    tool = "{name: v2ray, sni: 'a b'}"
    assert problem(tool) == (
        f"{at(tool, 'sni')}: tools.2.sni: option 'sni' of tool 'v2ray': 'a b' does not match "
        "^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$ (a DNS name: letters, digits, '.' and "
        "'-')"
    )


def test_labels_are_safe_unique_and_not_another_tools_name() -> None:
    tool = "{name: psiphon-like-tls, as: tls-cdn}"
    assert problem(tool) == (
        f"{at(tool)}: tools.2: tool label 'tls-cdn' is used twice (items 1 and 2): give each "
        "variant of a tool its own `as:` name"
    )
    tool = "{name: obfs4, as: ../x}"
    assert problem(tool) == (
        f"{at(tool, 'as')}: tools.2.as: `as:` name '../x' is not a safe name: it contains '/'; use "
        "letters, digits and - _ . + (not first: . or -), at most 64 characters"
    )
    tool = "{name: obfs4, as: trojan}"
    assert problem(tool) == (
        f"{at(tool, 'as')}: tools.2.as: `as:` name 'trojan' is the name of another tool; "
        "choose another"
    )
    tool = "{name: obfs5}"
    assert problem(tool).startswith(
        f"{at(tool, 'name')}: tools.2.name: unknown tool 'obfs5' (did you mean 'obfs4'?); "
        "valid tools:"
    )
    tool = "{as: x}"
    assert problem(tool) == (
        f"{at(tool)}: tools.2: a tool entry needs `name:` (the tool), e.g. {{name: obfs4, "
        "iat-mode: 1}"
    )


def _script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def test_own_build_in_a_scenario_must_exist_be_executable_and_fit(tmp_path) -> None:
    assert problem(f"{{name: obfs4, binary: {tmp_path}/nope}}").endswith(
        f"tools.2.binary: own build of obfs4: {tmp_path}/nope does not exist"
    )
    plain = tmp_path / "plain"
    plain.write_text("")
    assert problem(f"{{name: obfs4, binary: {plain}}}").endswith(
        f"own build of obfs4: {plain} is not executable (chmod +x {plain})"
    )
    assert problem("{name: shadowsocks, binary: /usr/bin/ss-server}").endswith(
        "tools.2.binary: own build of shadowsocks: tool 'shadowsocks' runs 2 programs "
        "(ss-server, ss-local): give a directory holding them by these names"
    )
    assert problem("{name: psiphon-like-meek, binary: /usr/bin/true}").endswith(
        "tool 'psiphon-like-meek' runs no program of its own (it is gatecrash's Python code or "
        "the control), so there is no build to put in its place"
    )
    build = _script(tmp_path / "obfs4proxy", 'exec obfs4proxy "$@"\n')
    entry = scenario(f"{{name: obfs4, binary: {build}}}").tool_variants()["obfs4"]
    assert entry.binary == str(build)


def test_tool_binary_applies_to_every_column_of_the_tool(tmp_path) -> None:
    build = _script(tmp_path / "obfs4proxy", 'exec obfs4proxy "$@"\n')
    s = scenario("{name: obfs4, as: obfs4-iat, iat-mode: 1}")
    s = parse_scenario(
        SCENARIO.replace("TOOL", "obfs4, {name: obfs4, as: obfs4-iat, iat-mode: 1}"), "s.yaml"
    )
    built = with_binaries(s, {"obfs4": str(build)})
    assert {label: e.binary for label, e in built.tool_variants().items()} == {
        "direct": None, "tls-cdn": None, "obfs4": str(build), "obfs4-iat": str(build)
    }  # fmt: skip
    assert built.tool_variants()["obfs4-iat"].options == {"iat-mode": 1}
    tool = build_tool(built, "obfs4-iat")
    assert tool.program("obfs4proxy") == str(build) and tool.program("microsocks") == "microsocks"
    with pytest.raises(OwnBuildError, match=r"no tool 'obfs' \(did you mean 'obfs4'\?\)"):
        with_binaries(s, {"obfs": str(build)})
    with pytest.raises(OwnBuildError, match="is not executable"):
        with_binaries(s, {"obfs4": __file__})


def test_a_directory_build_replaces_each_program_it_holds(tmp_path) -> None:
    _script(tmp_path / "ss-local", 'exec ss-local "$@"\n')
    s = with_binaries(scenario("shadowsocks"), {"shadowsocks": str(tmp_path)})
    tool = build_tool(s, "shadowsocks")
    assert tool.program("ss-local") == str(tmp_path / "ss-local")
    assert tool.program("ss-server") == "ss-server"


def test_the_version_is_asked_of_the_own_build(tmp_path) -> None:
    build = _script(
        tmp_path / "obfs4proxy",
        'if [ "$1" = -version ]; then echo obfs4proxy-0.0.15-dev; exit 0; fi\n'
        'exec obfs4proxy "$@"\n',
    )
    s = with_binaries(scenario(), {"obfs4": str(build)})
    assert build_tool(s, "obfs4").version() == "obfs4proxy-0.0.15-dev"
    assert build_tool(scenario(), "obfs4").version() == "obfs4proxy-0.0.14"
    assert build_tool(s, "direct").version() is None
    assert build_tool(s, "tls-cdn").version() == "built in (Python)"
    tun = with_binaries(scenario("obfs4"), {"obfs4": str(build)})
    assert build_tool(tun, "obfs4").version() == "obfs4proxy-0.0.15-dev"
    ss_tun = scenario("shadowsocks+tun")
    assert (build_tool(ss_tun, "shadowsocks+tun").version() or "").startswith("shadowsocks-libev")

    class Record:
        def __init__(self, tool: str, version: str | None) -> None:
            self.tool, self.tool_version = tool, version

    lines = version_lines(s, [Record("obfs4", "obfs4proxy-0.0.15-dev"), Record("direct", None)])
    assert lines == [f"obfs4: obfs4proxy-0.0.15-dev (own build {build})"]


def test_resume_refuses_changed_options_or_build(tmp_path) -> None:
    saved = scenario("{name: obfs4, iat-mode: 1}")
    assert resume_problems(saved, scenario("{name: obfs4, iat-mode: 1}")) == []
    assert resume_problems(saved, scenario("{name: obfs4, iat-mode: 2}")) == [
        "tool 'obfs4': options differ: saved run {'iat-mode': 1}, given {'iat-mode': 2}"
    ]
    # the default given explicitly is the same run
    assert resume_problems(scenario("obfs4"), scenario("{name: obfs4, iat-mode: 0}")) == []
    build = _script(tmp_path / "obfs4proxy", 'exec obfs4proxy "$@"\n')
    rebuilt = with_binaries(saved, {"obfs4": str(build)})
    assert resume_problems(saved, rebuilt) == [
        f"tool 'obfs4': binary differs: saved run None, given {str(build)!r}"
    ]


def test_tool_binary_on_the_command_line(tmp_path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SCENARIO.replace("TOOL", "obfs4"))
    missing = tmp_path / "build" / "obfs4proxy"
    assert main(["run", str(path), "--tool-binary", f"obfs4={missing}"]) == 2
    assert f"--tool-binary: {missing} does not exist" in capsys.readouterr().err
    assert main(["run", str(path), "--tool-binary", "obfs4"]) == 2
    assert "--tool-binary takes NAME=PATH, got 'obfs4'" in capsys.readouterr().err


def test_tools_list_options(capsys) -> None:
    assert main(["tools", "list", "--options", "obfs4"]) == 0
    out = capsys.readouterr().out
    assert "iat-mode" in out and "0 | 1 | 2" in out and "replaces: obfs4proxy" in out
    assert main(["tools", "list", "--options", "obfs"]) == 2
    assert "unknown tool 'obfs' (did you mean 'obfs4'?)" in capsys.readouterr().err


def test_plain_entries_stay_plain_names() -> None:
    s = scenario("obfs4")
    tls = ToolEntry(name="psiphon-like-tls", label="tls-cdn", options={"sni": "cdn.example.test"})
    assert s.tools == ["direct", tls, "obfs4"]
