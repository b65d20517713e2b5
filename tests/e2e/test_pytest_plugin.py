"""`pytest SCENARIO.yaml`: one item per expectation, the scenario run once, JUnit as usual."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

pytestmark = pytest.mark.e2e

SCENARIO = """\
name: plugin-check
trials: 1
apps: [xmpp]
tools: [direct]
xmpp: {messages: 3}
# 1 trial: Wilson 1/1 = [0.21, 1]; limits scaled so one good trial can count as works.
thresholds: {works_min_cssr_lower: 0.2, blocked_max_cssr_upper: 0.2}
censors:
  open: []
  chat-blocked: [{type: port_block, proto: tcp, ports: [5222], action: reject}]
expect:
  - {censor: open, tool: direct, app: xmpp, verdict: works}
  - {censor: chat-blocked, tool: direct, app: xmpp, verdict: works}  # deliberately wrong
"""


def test_each_expectation_is_a_test_item(tmp_path) -> None:
    scenario = tmp_path / "plugin.yaml"
    scenario.write_text(SCENARIO)
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(scenario), "-p", "no:cacheprovider",
         f"--junitxml={junit}", "--gatecrash-out", str(tmp_path / "out"), "-q",
         "--rootdir", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "1 failed, 1 passed" in proc.stdout
    assert "expected works, got" in proc.stdout
    cases = ET.parse(junit).getroot().iter("testcase")
    outcome = {c.get("name"): c.find("failure") is None for c in cases}
    assert outcome == {"open/direct/xmpp": True, "chat-blocked/direct/xmpp": False}
    assert (tmp_path / "out" / "plugin-check" / "summary.json").exists()
