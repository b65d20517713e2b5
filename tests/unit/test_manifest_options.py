"""A manifest's `options:` block: each option typed, with a valid default and a description;
usable as {option.NAME}; `tls_name` may name the certificate after an option; mistakes are
FILE:LINE:COL errors."""

from __future__ import annotations

import pytest

from harness.tools.manifest import ManifestError, parse_manifest
from harness.tools.manifest_tool import ManifestTool, Renderer

BASE = """\
name: demo
protocols: [demo]
endpoint: "127.0.0.1:{port.local}"
ports: {local: 1080}
options:
  mode:
    type: str
    default: fast
    choices: [fast, slow]
    description: how it goes
  level:
    type: int
    default: 3
    min: 0
    max: 9
    description: how much
  quiet:
    type: bool
    default: false
    description: say less
tls_name: "{option.mode}.example.test"
server:
  - name: srv
    command: [demo-server, --mode, "{option.mode}", --level, "{option.level}", "{tls_name}"]
client:
  - name: cli
    command: [demo-client, "--quiet={option.quiet}"]
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "t.yaml")
    return info.value.problems


def test_options_become_a_model_and_template_values(tmp_path) -> None:
    path = tmp_path / "tool.yaml"
    path.write_text(BASE)
    cls = ManifestTool.for_file(path)
    tool = cls(cls.Options.model_validate({"mode": "slow", "level": 9}))
    values = tool.option_values()
    assert values == {"option.mode": "slow", "option.level": "9", "option.quiet": "false"}
    render = Renderer({**values, "tls_name": Renderer(values)(cls.manifest.tls_name or "")})
    argv = tool.command(cls.manifest.server[0], render)
    assert argv == ["demo-server", "--mode", "slow", "--level", "9", "slow.example.test"]


def test_a_default_outside_the_choices_or_range_is_refused() -> None:
    (msg,) = problems(BASE.replace("default: fast", "default: medium"))
    assert msg.startswith("t.yaml:6:3: options.mode: ")
    assert "default 'medium' is not one of the choices ['fast', 'slow']" in msg
    (msg,) = problems(BASE.replace("default: 3", "default: 12"))
    assert msg.startswith("t.yaml:11:3: options.level: ")
    assert "default 12 is not a valid int: Input should be less than or equal to 9" in msg


def test_an_option_needs_type_and_description() -> None:
    (msg,) = problems(BASE.replace("    description: say less\n", ""))
    assert msg == "t.yaml:17:3: options.quiet.description: missing required key 'description'"
    (msg,) = problems(BASE.replace("type: bool", "type: boolean"))
    assert msg.startswith("t.yaml:18:5: options.quiet.type: 'boolean' is not allowed")


def test_option_names_are_lowercase_with_hyphens() -> None:
    (msg,) = problems(BASE.replace("  level:", "  Level:").replace("option.level", "option.Level"))
    assert msg.startswith("t.yaml:11:3: options.Level: String should match pattern")


def test_an_unknown_option_variable_names_the_valid_ones() -> None:
    (msg,) = problems(BASE.replace("{option.quiet}", "{option.quite}"))
    assert msg.startswith("t.yaml:27:28: client.0.command.1: ")
    assert "unknown variable {option.quite}" in msg and "option.quiet" in msg
