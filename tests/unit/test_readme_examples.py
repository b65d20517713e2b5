"""Every YAML example in README.md that is a scenario or a list of censors validates, so the
documentation cannot drift from the models (a `dns_poison` example once used `answer:` where
the key is `lie:`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from harness.scenario import parse_scenario

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
BLOCK = re.compile(r"^```yaml\n(.*?)^```", re.DOTALL | re.MULTILINE)


def yaml_blocks() -> list[tuple[int, str]]:
    """(line of the block's first line, text) of every ```yaml block."""
    text = README.read_text()
    return [(text.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in BLOCK.finditer(text)]


def as_scenario(text: str) -> str | None:
    """The block as a scenario text: itself when it is one, wrapped into a minimal one when
    it is only censors (a `censors:` mapping, a list of techniques or one technique)."""
    data = yaml.safe_load(text)
    if isinstance(data, dict) and "name" in data and "apps" in data:
        return text
    if isinstance(data, dict) and "censors" in data:
        censors = data["censors"]
    elif isinstance(data, list) and all(isinstance(t, dict) and "type" in t for t in data):
        censors = {"example": data}
    elif isinstance(data, dict) and "type" in data:
        censors = {"example": [data]}
    else:
        return None
    minimal = {"name": "readme", "apps": ["sip"], "tools": ["direct"], "censors": censors}
    return yaml.safe_dump(minimal, sort_keys=False)


EXAMPLES = [(line, s) for line, block in yaml_blocks() if (s := as_scenario(block)) is not None]


def test_readme_has_scenario_and_censor_examples() -> None:
    texts = [text for _, text in EXAMPLES]
    assert any("name: quickstart" in t for t in texts)
    assert any("mode: resolver" in t and "lie:" in t for t in texts)


@pytest.mark.parametrize(("line", "text"), EXAMPLES, ids=[f"line{n}" for n, _ in EXAMPLES])
def test_readme_example_validates(line: int, text: str) -> None:
    scenario = parse_scenario(text, f"README.md (block at line {line})")
    assert scenario.cells()
