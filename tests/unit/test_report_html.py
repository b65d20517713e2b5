"""The HTML report and the evidence behind it, from run directories built in the test.

Rendering in a real browser is tested end to end (tests/e2e/test_quickstart.py); here:
the page's structure, escaping, and evidence read from damaged files.
"""

from __future__ import annotations

import json
import re

from harness.cli import EXIT_EXPECT_FAILED, main
from harness.report.evidence import describe_event, gather, wants_evidence
from harness.report.pcap_rtp import _epoch_ns, agrees
from tests.unit.test_report_files import call_trial, unit_results, write_run


def test_report_writes_a_self_contained_page_with_one_heat_cell_per_censor_and_tool(
    tmp_path,
) -> None:
    run = write_run(tmp_path / "run", unit_results())
    assert main(["report", str(run)]) == EXIT_EXPECT_FAILED
    page = (run / "report.html").read_text()
    for app in ("sip", "xmpp"):
        table = page.split(f'<table class="heatmap" data-app="{app}">', 1)[1].split("</table>")[0]
        cells = re.findall(r'data-censor="([^"]+)" data-tool="([^"]+)"', table)
        assert sorted(cells) == sorted(
            (c, t) for c in ("open", "throttle") for t in ("direct", "shadowsocks")
        )
    assert 'data-verdict="signalling-blocked"' in page
    assert "<svg" in page and "MOS per trial" in page and "connect time per trial" in page
    assert not re.search(r"(src|href)=\"https?://", page), "the page must not need a network"
    assert '"name": "unit"' in page  # the scenario itself is in the page


def test_html_option_and_escaping_of_names(tmp_path) -> None:
    results = unit_results()
    for r in results:
        r.censor = r.censor.replace("throttle", "<b>throttle</b>")
    run = write_run(tmp_path / "run", results)
    target = tmp_path / "page.html"
    main(["report", str(run), "--html", str(target)])
    page = target.read_text()
    assert "<b>throttle</b>" not in page and "&lt;b&gt;throttle&lt;/b&gt;" in page
    assert not (run / "report.html").exists()


def test_evidence_reads_censor_events_and_log_tails_and_skips_a_cut_line(tmp_path) -> None:
    trial_dir = tmp_path / "t"
    (trial_dir / "logs").mkdir(parents=True)
    events = [
        {"time": 1.0, "technique": "port_block", "action": "install", "rule": "x"},
        {"time": 2.0, "technique": "sni_filter", "action": "rst", "flow": "tcp a:1 -> b:443"},
    ]
    (trial_dir / "censor.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in events) + '{"time": 3.0, "techn'
    )
    (trial_dir / "logs" / "client.caller.err").write_text("\n".join(f"l{i}" for i in range(20)))
    (trial_dir / "logs" / "client.caller.out").write_text("")
    trial = call_trial("c", "direct", 0, ok=False)
    trial.logs = {"dir": str(trial_dir)}
    ev = gather(trial)
    assert ev.installed == 1
    assert [e["action"] for e in ev.events] == ["rst"]
    assert list(ev.log_tails) == ["client.caller.err"]  # empty logs are not evidence
    assert ev.log_tails["client.caller.err"][-1] == "l19"
    assert len(ev.log_tails["client.caller.err"]) == 8
    assert describe_event(ev.events[0], 1.5) == "+0.500s sni_filter rst [tcp a:1 -> b:443]"
    assert wants_evidence(trial, "works")  # a failed trial, whatever its cell's verdict
    assert wants_evidence(trial, "inconclusive")
    good = call_trial("c", "direct", 1)
    assert not wants_evidence(good, "works") and not wants_evidence(good, "inconclusive")
    assert wants_evidence(good, "media-blocked")  # why did a set-up call count as blocked?


def test_pcap_check_is_not_attempted_through_a_tool_and_says_why(tmp_path) -> None:
    trial = call_trial("c", "shadowsocks", 0)
    trial.logs = {"pcap": str(tmp_path / "censor.pcapng"), "dir": str(tmp_path)}
    ev = gather(trial)
    assert ev.pcap == [] and "inside the tool's tunnel" in (ev.pcap_note or "")


def test_pcap_agreement_limits() -> None:
    assert agrees({"loss_pct": 10.0, "jitter_ms": 1.0}, {"loss_pct": 10.5, "jitter_ms": 1.1})[0]
    ok, why = agrees({"loss_pct": 10.0, "jitter_ms": 1.0}, {"loss_pct": 12.0, "jitter_ms": 1.0})
    assert not ok and "loss differs by 2.00 points" in why
    ok, why = agrees({"loss_pct": 0.0, "jitter_ms": 1.0}, {"loss_pct": 0.0, "jitter_ms": 5.0})
    assert not ok and "jitter differs" in why


def test_pcap_timestamps_keep_nanoseconds() -> None:
    assert _epoch_ns("1795872265.619888269") == 1795872265_619888269
    assert _epoch_ns("1795872265.5") == 1795872265_500000000
    assert _epoch_ns("1795872265") == 1795872265_000000000
