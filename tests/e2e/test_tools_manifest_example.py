"""The example manifest (examples/tools/stunnel) is used exactly as a tool developer would:
`gatecrash tools list / validate / run --tools-dir examples/tools`, no gatecrash code
touched. The run carries an XMPP session through stunnel while the censor blocks `chat`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "tools"
SCENARIO = """\
name: stunnel-example
trials: 1
apps: [xmpp]
tools: [stunnel]
xmpp: {messages: 3, interval_ms: 20, timeout_s: 8}
censors:
  chat-blocked: [{type: ip_block, hosts: [chat]}]
"""


def gatecrash(*args: str, timeout: float = 60, env: dict | None = None):
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)  # fmt: skip


def test_tools_list_shows_the_example_only_with_tools_dir() -> None:
    without = gatecrash("tools", "list")
    listed = gatecrash("tools", "list", "--tools-dir", str(EXAMPLES))
    assert without.returncode == 0 and listed.returncode == 0, listed.stderr
    assert "stunnel" not in without.stdout
    row = next(line for line in listed.stdout.splitlines() if "│ stunnel " in line)
    assert "stunnel 5.68" in row and "socks5" in row and "│ none" in row
    by_env = gatecrash("tools", "list", env={**os.environ, "GATECRASH_TOOLS_DIR": str(EXAMPLES)})
    assert "│ stunnel " in by_env.stdout


def test_validate_names_unknown_tool_then_accepts_it_with_tools_dir(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    bad = gatecrash("validate", str(scenario))
    assert bad.returncode == 2
    assert "unknown tool 'stunnel'" in bad.stderr and "obfs4" in bad.stderr
    good = gatecrash("validate", "--tools-dir", str(EXAMPLES), str(scenario))
    assert good.returncode == 0, good.stderr


def test_run_carries_xmpp_through_the_example_tool(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text(SCENARIO)
    out = tmp_path / "out"
    run = gatecrash("run", "--tools-dir", str(EXAMPLES), str(scenario), "--out", str(out),
                    timeout=120)  # fmt: skip
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    (result,) = results
    print(f"\nstunnel example: outcome {result['outcome']}, setup {result['tool_setup_ms']} ms")
    assert run.returncode == 0, run.stdout + run.stderr
    assert result["tool"] == "stunnel" and result["outcome"] == "ok", result.get("error")
    assert result["message"]["connected"] and result["message"]["delivered"] == 3, result
    stunnel_log = Path(result["logs"]["dir"]) / "logs" / "client.stunnel-stunnel.err"
    assert "Certificate accepted at depth=0: CN=proxy.gatecrash.test" in stunnel_log.read_text()
