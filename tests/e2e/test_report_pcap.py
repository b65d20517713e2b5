"""Evidence behind a verdict: RTP loss and jitter recomputed from the censor's pcap (with
pyshark over tshark's dissectors) agree with the app's own figures, and the report says so.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report.evidence import gather
from harness.report.loading import read_results_tolerant
from harness.report.pcap_rtp import read_rtp
from harness.runner import Runner
from harness.scenario import parse_scenario
from tests.conftest import REPO

pytestmark = pytest.mark.e2e

SCENARIO = """
name: e2e-pcap
trials: 1
call_seconds: 2
apps: [sip]
tools: [direct]
capture: true
censors:
  open: []
  udp-throttle: [{type: udp_throttle, rate: 16kbit}]
"""


@pytest.fixture(scope="module")
def captured(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pcap")
    Runner(parse_scenario(SCENARIO), out).run()
    return out


def test_pcap_figures_agree_with_the_app_in_both_directions(captured) -> None:
    results = {r.censor: r for r in read_results_tolerant(captured / "results.jsonl").results}
    for censor, result in results.items():
        evidence = gather(result)
        assert evidence.pcap_note is None
        assert {c.direction for c in evidence.pcap} == {"up", "down"}, censor
        for check in evidence.pcap:
            assert check.agree, (censor, check.direction, check.why)
            # Same RFC 3550 counting: the lost packets are the same packets.
            assert check.pcap["lost"] == check.app["lost"], (censor, check.direction)
    # The comparison is not trivially 0 = 0: under the throttle most media is lost.
    throttled = gather(results["udp-throttle"]).pcap
    assert all(c.pcap["loss_pct"] > 50 and c.app["loss_pct"] > 50 for c in throttled)


def test_reading_a_pcap_leaves_no_sigchld_handler_behind(captured) -> None:
    """pyshark in the main thread would install a process-wide SIGCHLD handler on an event
    loop nobody runs; later child exits then fill its wakeup pipe."""
    (pcap, *_) = sorted(captured.glob("trials/**/*.pcap*"))
    before = signal.getsignal(signal.SIGCHLD)
    assert read_rtp(pcap), pcap
    assert signal.getsignal(signal.SIGCHLD) == before
    assert signal.set_wakeup_fd(-1) == -1  # no wakeup pipe was set either
    subprocess.run(["true"], check=True)  # a child exit with nobody listening: no warning


def test_report_shows_the_pcap_check_and_the_censor_evidence(captured) -> None:
    rep = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(captured)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert rep.returncode == 0, rep.stderr
    assert "udp-throttle / direct / sip #0" in rep.stdout
    assert "udp_throttle matched" in rep.stdout
    assert "pcap: loss and jitter agree with the app (up, down)" in rep.stdout
    page = (captured / "report.html").read_text()
    assert page.count('<table class="pcap-check">') >= 1
    assert "DISAGREE" not in page
