"""The tool developer's loop, end to end through the real runner and CLI.

- Two variants of one tool differ measurably: psiphon-like-tls with an SNI on the censor's
  blocklist and with an allowed one, under a censor that also blackholes the chat server
  (the direct path): the blocked-SNI variant is reset and fails, the other carries an XMPP
  chat; the control is blocked.
- An own build runs in place of the packaged program: a wrapper script for obfs4proxy (it
  says its own version, logs a line, then execs the packaged program) given with
  `--tool-binary`, with `iat-mode: 1`: the bridge runs through the wrapper with that mode,
  the chat goes through, and the wrapper's version is in results.jsonl and the output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from censor_sims.events import EventLog
from harness.results import final_attempts
from harness.runner import Runner
from harness.scenario import parse_scenario

pytestmark = pytest.mark.e2e

BLOCKED_SNI = "blocked.example.test"
ALLOWED_SNI = "cdn.example.test"
MESSAGES = 5

VARIANTS = f"""\
name: sni-variants
trials: 1
apps: [xmpp]
tools:
  - direct
  - {{name: psiphon-like-tls, as: tls-blocked-sni, sni: {BLOCKED_SNI}}}
  - {{name: psiphon-like-tls, as: tls-allowed-sni, sni: {ALLOWED_SNI}}}
censors:
  sni-and-chat:
    - {{type: ip_block, hosts: [chat]}}
    - {{type: sni_filter, names: [{BLOCKED_SNI}], match: exact}}
xmpp: {{messages: {MESSAGES}, interval_ms: 20, timeout_s: 5}}
"""


@pytest.fixture(scope="module")
def variants(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("variants")
    results = final_attempts(Runner(parse_scenario(VARIANTS), out, jobs=3).run())
    return {r.tool: r for r in results}


def test_the_direct_path_is_blocked(variants) -> None:
    chat = variants["direct"]
    assert chat.message is None or chat.message.delivered == 0, chat.outcome


def test_the_variant_naming_a_blocked_sni_is_reset(variants) -> None:
    trial = variants["tls-blocked-sni"]
    assert trial.outcome == "tool-failure", f"{trial.outcome}: {trial.error}"
    events = EventLog(Path(trial.logs["censor"])).read()
    hits = [e for e in events if e.get("layer") == "engine" and e["technique"] == "sni_filter"]
    assert hits and all(e["flow"].endswith(":443") for e in hits), hits


def test_the_variant_with_an_allowed_sni_carries_the_chat(variants) -> None:
    trial = variants["tls-allowed-sni"]
    assert trial.outcome == "ok", f"{trial.outcome}: {trial.error}"
    assert trial.message is not None and trial.message.delivered == MESSAGES
    events = EventLog(Path(trial.logs["censor"])).read()
    assert not [e for e in events if e.get("technique") == "sni_filter" and e.get("flow")]


OWN_BUILD = """\
name: own-build
trials: 1
apps: [xmpp]
tools: [{name: obfs4, iat-mode: 1}]
censors:
  chat-blocked: [{type: ip_block, hosts: [chat]}]
xmpp: {messages: 5, interval_ms: 20, timeout_s: 5}
"""
WRAPPER = """\
#!/bin/sh
# A developer's "own build": says its own version, then runs the packaged program.
if [ "$1" = -version ]; then echo obfs4proxy-0.0.14+mybuild; exit 0; fi
echo "own build of obfs4proxy running" >&2
exec /usr/bin/obfs4proxy "$@"
"""


def test_an_own_build_runs_and_its_version_is_recorded(tmp_path) -> None:
    scenario = tmp_path / "own-build.yaml"
    scenario.write_text(OWN_BUILD)
    build = tmp_path / "build" / "obfs4proxy"
    build.parent.mkdir()
    build.write_text(WRAPPER)
    build.chmod(0o755)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--out", str(out),
         "--tool-binary", f"obfs4={build}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"tool obfs4: obfs4proxy-0.0.14+mybuild (own build {build})" in proc.stdout
    (record,) = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert record["outcome"] == "ok" and record["message"]["delivered"] == 5
    assert record["tool_version"] == "obfs4proxy-0.0.14+mybuild"
    saved = json.loads((out / "scenario.json").read_text())
    assert saved["tools"] == [{"name": "obfs4", "binary": str(build), "iat-mode": 1}]
    logs = Path(record["logs"]["dir"]) / "logs"
    for host in ("proxy", "client"):  # both sides ran the wrapper
        assert (
            "own build of obfs4proxy running" in (logs / f"{host}.obfs4-obfs4proxy.err").read_text()
        )
    # the bridge really runs with iat-mode 1: it announces it to clients
    assert "iat-mode=1" in (logs / "proxy.obfs4-obfs4proxy.out").read_text()


WORKING = """\
name: option-settings
trials: 1
apps: [xmpp]
tools:
  - {name: shadowsocks, cipher: aes-256-gcm, port: 443}
  - {name: v2ray, transport: http, sni: cdn.example.test}
  - {name: trojan, sni: cdn.example.test}
  - {name: sing-box-vless, transport: grpc, sni: cdn.example.test}
  - {name: sing-box-hysteria2, obfs: salamander}
  - {name: openvpn-udp, as: openvpn-tcp-443, proto: tcp, port: 443}
  - {name: wireguard, port: 4500, mtu: 1280}
censors:
  chat-blocked: [{type: ip_block, hosts: [chat]}]
xmpp: {messages: 5, interval_ms: 20, timeout_s: 5}
"""


@pytest.fixture(scope="module")
def settings(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("settings")
    results = final_attempts(Runner(parse_scenario(WORKING), out, jobs=4).run())
    return {r.tool: r for r in results}


@pytest.mark.parametrize(
    "label",
    ["shadowsocks", "v2ray", "trojan", "sing-box-vless", "sing-box-hysteria2",
     "openvpn-tcp-443", "wireguard"],
)  # fmt: skip
def test_a_tool_with_settings_still_carries_the_chat(settings, label) -> None:
    """Each setting makes a configuration the programs accept and that carries traffic."""
    trial = settings[label]
    assert trial.outcome == "ok", f"{trial.outcome}: {trial.error}"
    assert trial.message is not None and trial.message.delivered == 5
