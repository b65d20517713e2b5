"""The spine end to end: the quickstart's three outcomes with real servers, real packets.

Short calls (2 s) and 4 trials per cell keep CI fast; the verdict logic is the product's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from harness.report.loading import read_results_tolerant
from harness.report.summary import build_summary
from harness.runner import Runner
from harness.scenario import parse_scenario
from harness.topology.namespaces import NETNS_ETC, list_namespaces
from harness.topology.state import STATE_DIR
from tests.conftest import REPO, host_network_state

pytestmark = pytest.mark.e2e

SCENARIO = """
name: e2e-quickstart
trials: 4
call_seconds: 2
apps: [sip, xmpp]
tools: [direct, shadowsocks]
xmpp: {messages: 5, interval_ms: 20}
# 4 trials: Wilson 4/4 = [0.51, 1], 0/4 = [0, 0.49]; the fewest that tell them apart.
thresholds: {works_min_cssr_lower: 0.5, blocked_max_cssr_upper: 0.5}
censors:
  open: []
  udp-throttle: [{type: udp_throttle, rate: 16kbit}]
  sip-blocked: [{type: port_block, proto: udp, ports: [5060]}]
"""


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("quickstart")
    before = host_network_state()
    scenario = parse_scenario(SCENARIO)
    runner = Runner(scenario, out)
    results = runner.run()
    after = host_network_state()
    summary = build_summary(scenario, runner.run_id, "netns", results).model_dump(mode="json")
    cells = {(c["censor"], c["tool"], c["app"]): c for c in summary["cells"]}
    return {"out": out, "results": results, "cells": cells, "before": before, "after": after,
            "run_id": runner.run_id}  # fmt: skip


def test_open_every_cell_works_and_direct_sip_sounds_good(quickstart) -> None:
    cells = quickstart["cells"]
    for tool in ("direct", "shadowsocks"):
        for app in ("sip", "xmpp"):
            cell = cells[("open", tool, app)]
            assert cell["verdict"] == "works", cell
    assert cells[("open", "direct", "sip")]["mos_median"] >= 4.2
    assert cells[("open", "direct", "xmpp")]["delivery_ratio"] == 1.0


def test_udp_throttle_starves_direct_media_but_not_chat(quickstart) -> None:
    cells = quickstart["cells"]
    assert cells[("udp-throttle", "direct", "sip")]["verdict"] in ("media-blocked", "degraded")
    assert cells[("udp-throttle", "direct", "xmpp")]["verdict"] == "works"


def test_sip_port_block_stops_direct_signalling_and_shadowsocks_carries_it(quickstart) -> None:
    cells = quickstart["cells"]
    assert cells[("sip-blocked", "direct", "sip")]["verdict"] == "signalling-blocked"
    assert cells[("sip-blocked", "shadowsocks", "sip")]["verdict"] == "works"


def test_results_are_complete_and_evidence_is_kept(quickstart) -> None:
    results = read_results_tolerant(quickstart["out"] / "results.jsonl").results
    assert len(results) == 3 * 2 * 2 * 4
    blocked = [r for r in results if r.censor == "sip-blocked" and r.tool == "direct"
               and r.app == "sip"]  # fmt: skip
    assert all(r.outcome == "timeout" and not r.call.registered for r in blocked)
    events = [json.loads(line) for line in Path(blocked[0].logs["censor"]).read_text().splitlines()]
    assert any(e["action"] == "matched" and e["packets"] > 0 for e in events)


def test_run_leaves_host_unchanged_and_nothing_behind(quickstart) -> None:
    assert quickstart["after"] == quickstart["before"]
    run_id = quickstart["run_id"]
    assert not [ns for ns in list_namespaces() if ns.startswith(f"gc-{run_id}-")]
    assert not list(NETNS_ETC.glob(f"gc-{run_id}-*"))


def test_clean_reaps_a_run_killed_with_sigkill(tmp_path) -> None:
    scenario = tmp_path / "long.yaml"
    scenario.write_text(
        "name: long\ntrials: 1\ncall_seconds: 60\napps: [sip]\ntools: [direct]\n"
        "censors: {open: []}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--out", str(tmp_path / "o")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    caller_log = tmp_path / "o" / "trials" / "open" / "direct" / "sip" / "0" / "logs"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # mid-call: the caller has said something
        log = caller_log / "client.caller.out"
        if log.exists() and '"event"' in log.read_text():
            break
        time.sleep(0.1)
    run_prefix = f"gc-{_run_id_writing_to(tmp_path / 'o')}"  # this run's, not another's
    run_ns = [ns for ns in list_namespaces() if ns.startswith(run_prefix + "-")]
    pids = [pid for ns in run_ns for pid in _pids(ns)]
    assert pids, "servers should be running in the run's namespaces"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)
    assert [ns for ns in list_namespaces() if ns.startswith(run_prefix + "-")], "left behind"
    subprocess.run([sys.executable, "-m", "harness.cli", "clean"], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    assert not [ns for ns in list_namespaces() if ns.startswith(run_prefix + "-")]
    assert not list(NETNS_ETC.glob(f"{run_prefix}-*"))
    time.sleep(0.2)
    assert not [pid for pid in pids if _alive(pid)]


def _run_id_writing_to(out: Path) -> str:
    """The run whose alive-marker names `out` as its output directory."""
    for marker in STATE_DIR.glob("*.json"):
        if json.loads(marker.read_text()).get("out") == str(out):
            return marker.stem
    raise AssertionError(f"no run marker for {out} in {STATE_DIR}")


def _pids(ns: str) -> list[int]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_tear_everything_down(tmp_path, sig) -> None:
    scenario = tmp_path / "slow.yaml"
    scenario.write_text(
        "name: slow\ntrials: 1\napps: [xmpp]\ntools: [shadowsocks]\ncensors: {open: []}\n"
        "xmpp: {messages: 400, interval_ms: 50}\n"
    )
    before = set(list_namespaces())
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", str(scenario), "--out", str(tmp_path / "o")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        new = [ns for ns in set(list_namespaces()) - before if ns.endswith("-client")]
        if new and any("harness.apps.xmpp.agent" in _cmdline(p) for p in _pids(new[0])):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("the sender never started")
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert set(list_namespaces()) - before == set()


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    """Debian's chromium, headless (as root it needs --no-sandbox; no GPU in CI). A profile
    of its own per call: a second chromium on a shared profile hands its work to the first
    and exits 0 having done nothing."""
    with tempfile.TemporaryDirectory(prefix="gc-chromium-") as profile:
        argv = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
                "--hide-scrollbars", f"--user-data-dir={profile}", "--enable-logging=stderr",
                "--v=0", *args]  # fmt: skip
        return subprocess.run(argv, capture_output=True, text=True, timeout=90, check=True)


def test_html_report_renders_in_headless_chromium(quickstart) -> None:
    """The report of the quickstart run opens in a real browser: a heatmap cell per (censor,
    tool) of each app, the page's script ran without error, and a screenshot is taken."""
    out = quickstart["out"]
    rep = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    page = out / "report.html"
    assert "report.html" in rep.stdout and page.is_file()
    assert "http://" not in page.read_text() and "https://" not in page.read_text()

    dom = _chromium("--dump-dom", page.as_uri())
    body = re.search(r"<body[^>]*>", dom.stdout).group(0)
    assert 'data-ready="1"' in body, "the page's script did not finish"
    assert "data-errors" not in body, body
    assert "Uncaught" not in dom.stderr
    for app in ("sip", "xmpp"):
        table = dom.stdout.split(f'<table class="heatmap" data-app="{app}">', 1)[1]
        table = table.split("</table>", 1)[0]
        cells = set(re.findall(r'class="heat-cell"[^>]*data-censor="([^"]+)" data-tool="([^"]+)"',
                               table))  # fmt: skip
        assert cells == {(c, t) for c in ("open", "udp-throttle", "sip-blocked")
                         for t in ("direct", "shadowsocks")}, app  # fmt: skip
    assert 'data-heat-cells="12"' in body
    # Each heatmap cell carries its cell's verdict from summary.json.
    cell = quickstart["cells"][("sip-blocked", "direct", "sip")]
    assert (
        'data-censor="sip-blocked" data-tool="direct" data-app="sip" '
        f'data-verdict="{cell["verdict"]}"'
    ) in dom.stdout

    shot = Path(os.environ.get("GATECRASH_SCREENSHOT_DIR", out)) / "quickstart-report.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    _chromium(f"--screenshot={shot}", "--window-size=1280,1800", page.as_uri())
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, 1800)
    assert len(png) > 50_000, "a blank page compresses to a few KB"
