"""The baresip app's pure parts: reading baresip's call report, ctrl_tcp framing, the
generated config, merging two instances' reports, and bad input (tool, missing binary).

The report texts below are real baresip 1.0.0 output (callee side), copied from a 6 s PCMU
call between two instances in this project's network namespaces and from a 2 s call of the
baresip app (no RTCP report yet; the app's drained end switched the source to gc-quiet).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.apps.baresip.agent import failure_outcome
from harness.apps.baresip.app import BaresipApp, direction, merge_call
from harness.apps.baresip.config import BaresipConfig, account_line, write_config_dir
from harness.apps.baresip.ctrl import CtrlError, NetstringReader, encode
from harness.apps.baresip.report import parse_summary, parse_table
from harness.programs import MissingProgram
from harness.scenario import ScenarioError, load_scenario, parse_scenario
from harness.tools.capabilities import NeedsRoutedTool, check_routed
from tests.conftest import REPO

SIX_SECOND_CALL = """\
bob@10.77.0.138: Call established: sip:alice@10.77.0.138
stream: incoming rtp for 'audio' established, receiving from 10.77.0.10:10002
sip:alice@10.77.0.138: session closed: Connection reset by peer

EX=BareSip;CS=0;CD=6;PR=250;PS=250;PL=0,0;PD=0,0;JI=1.0,1.0;DL=0.0;IP=0.0.0.0:10012,10.77.0.10:10002;
sip:bob@10.77.0.138;transport=udp: Call with sip:alice@10.77.0.138 terminated (duration: 6 secs)

audio           Transmit:     Receive:
packets:            301          300
avg. bitrate:      64.2         64.0  (kbit/s)
errors:               0            0
pkt.report:         250          250
lost:                 0            0
jitter:             1.0          1.0  (ms)
terminated by signal 15
ua: stop all (forced=0)
"""

TWO_SECOND_CALL = """\
bob@voip.gatecrash.test: Call established: sip:alice@voip.gatecrash.test
stream: incoming rtp for 'audio' established, receiving from 10.77.0.10:17400
aubridge: created device 'gc-quiet'
sip:alice@voip.gatecrash.test: session closed: Connection reset by peer

EX=BareSip;ERROR=No RTCP stats collected;
sip:bob@voip.gatecrash.test;transport=udp: Call with sip:alice@voip.gatecrash.test \
terminated (duration: 3 secs)

audio           Transmit:     Receive:
packets:            101          103
avg. bitrate:      42.5         43.3  (kbit/s)
errors:               0            0
ua: stop all (forced=0)
"""


def test_rtcpsummary_line_is_read_with_rx_and_tx_apart() -> None:
    s = parse_summary(SIX_SECOND_CALL)
    assert s == {
        "setup_ms": 0, "duration_s": 6, "received": 250, "sent": 250, "rtt_ms": 0.0,
        "lost_rx": 0, "lost_tx": 0, "discarded_rx": 0, "discarded_tx": 0,
        "jitter_ms_rx": 1.0, "jitter_ms_tx": 1.0,
    }  # fmt: skip
    # libre's lost counts are signed (duplicates can make them negative); the last line wins
    later = SIX_SECOND_CALL + "EX=BareSip;CS=12;CD=11;PR=480;PS=550;PL=70,-1;JI=7.4,6.1;DL=420.5;\n"
    assert parse_summary(later) == {
        "setup_ms": 12, "duration_s": 11, "received": 480, "sent": 550, "rtt_ms": 420.5,
        "lost_rx": 70, "lost_tx": -1, "jitter_ms_rx": 7.4, "jitter_ms_tx": 6.1,
    }  # fmt: skip
    assert parse_summary(TWO_SECOND_CALL) == {"error": "No RTCP stats collected"}
    assert parse_summary("baresip is ready.\n") is None


def test_rtp_stats_table_has_counters_and_rtcp_rows_only_with_a_report() -> None:
    t = parse_table(SIX_SECOND_CALL)
    assert t == {
        "tx": {"packets": 301, "bitrate_kbit": 64.2, "errors": 0, "reported": 250, "lost": 0,
               "jitter_ms": 1.0},
        "rx": {"packets": 300, "bitrate_kbit": 64.0, "errors": 0, "reported": 250, "lost": 0,
               "jitter_ms": 1.0},
    }  # fmt: skip
    short = parse_table(TWO_SECOND_CALL)
    assert short == {
        "tx": {"packets": 101, "bitrate_kbit": 42.5, "errors": 0},
        "rx": {"packets": 103, "bitrate_kbit": 43.3, "errors": 0},
    }
    assert parse_table("no call\n") is None


def test_netstrings_are_split_across_reads_and_bad_framing_is_an_error() -> None:
    wire = encode({"event": True, "type": "CALL_RINGING"}) + encode({"response": True})
    reader = NetstringReader()
    got = [json.loads(m) for i in range(len(wire)) for m in reader.feed(wire[i : i + 1])]
    assert got == [{"event": True, "type": "CALL_RINGING"}, {"response": True}]
    with pytest.raises(CtrlError, match="trailing comma"):
        NetstringReader().feed(b"2:{}x")
    with pytest.raises(CtrlError, match="not a netstring"):
        NetstringReader().feed(b"HTTP/1.1 200 OK")


def test_generated_config_is_headless_pcmu_with_ctrl_tcp_and_reports(tmp_path: Path) -> None:
    d = write_config_dir(tmp_path / "c", BaresipConfig("10.77.0.10", 5060, "10.77.0.53:53"))
    lines = (d / "config").read_text().splitlines()
    expected = [
        "sip_listen 10.77.0.10:5060", "net_interface 10.77.0.10", "dns_server 10.77.0.53:53",
        "rtp_stats yes", "audio_player aubridge,nil", "ausrc_srate 48000", "ausrc_channels 2",
        "ctrl_tcp_listen 127.0.0.1:4444", "module g711.so", "module_app ctrl_tcp.so",
        "module_app rtcpsummary.so",
    ]  # fmt: skip
    assert [line for line in expected if line not in lines] == []
    for module in [ln.split()[1] for ln in lines if ln.startswith("module")][1:]:
        assert Path("/usr/lib/baresip/modules", module).exists(), module
    assert not [ln for ln in (d / "accounts").read_text().splitlines() if ln[:1] == "<"]
    assert account_line("bob", "voip.gatecrash.test", True) == (
        "<sip:bob@voip.gatecrash.test;transport=udp>;regint=600;answermode=auto;audio_codecs=PCMU"
    )


@pytest.mark.parametrize(
    ("reason", "outcome", "status"),
    [
        ("486 Busy Here", "sip-4xx", 486),
        ("503 Service Unavailable", "sip-5xx", 503),
        ("Connection timed out", "timeout", None),
        ("Connection refused", "refused", None),
        ("Connection reset by peer", "reset", None),
        ("No such file or directory", "error", None),
    ],
)
def test_failure_reasons_map_to_the_sip_apps_outcomes(reason, outcome, status) -> None:
    assert failure_outcome(reason) == (outcome, status)


def _report(tx: int, rx: int, jit_us: int = 0, rtt_us: int = 0, rtcp: bool = True) -> dict:
    snapshot = {"rx": {"sent": rx, "lost": 0, "jit": jit_us},
                "tx": {"sent": tx, "lost": 0, "jit": 0}, "rtt": rtt_us}  # fmt: skip
    return {"rtcp": snapshot if rtcp else None,
            "table": {"tx": {"packets": tx}, "rx": {"packets": rx}}}  # fmt: skip


def test_loss_is_sender_count_against_receiver_count_and_jitter_the_rtcp_snapshot() -> None:
    receiver = _report(tx=575, rx=473, jit_us=6125, rtt_us=420000)
    sender = _report(tx=550, rx=492)
    d = direction(receiver, sender)
    assert d is not None
    assert (d.sent, d.received, d.lost, d.expected) == (550, 473, 77, 550)
    assert d.loss_pct == 14.0 and d.jitter_ms == 6.125 and d.owd_ms_mean == 210.0


def test_without_an_rtcp_report_jitter_and_delay_are_not_invented() -> None:
    d = direction(_report(tx=101, rx=98, rtcp=False), _report(tx=100, rx=98, rtcp=False))
    assert d is not None
    assert (d.sent, d.received, d.lost, d.loss_pct) == (100, 98, 2, 2.0)
    assert d.jitter_ms == 0.0 and d.owd_ms_mean is None
    # a report with no round trip yet (rtt 0) gives jitter but no delay
    d = direction(_report(tx=250, rx=250, jit_us=1000), _report(tx=250, rx=250))
    assert d is not None and d.jitter_ms == 1.0 and d.owd_ms_mean is None


def test_merge_scores_the_worse_direction_and_keeps_setup_times() -> None:
    caller = {**_report(tx=301, rx=301, jit_us=1000), "registered": True, "register_ms": 1.6,
              "setup_ok": True, "final_status": 200, "pdd_ms": 43.9, "setup_ms": 44.0,
              "media_s": 6.0}  # fmt: skip
    callee = _report(tx=301, rx=289, jit_us=1000)
    call = merge_call(caller, callee, "g711")
    assert call.setup_ok and call.setup_ms == 44.0 and call.pdd_ms == 43.9
    assert call.up is not None and call.up.loss_pct == 3.987
    assert call.down is not None and call.down.loss_pct == 0.0
    assert call.r_factor is not None and call.mos is not None
    assert call.r_factor < 93.2 - 40  # 4% loss without PLC (Bpl 4.3)
    failed = merge_call({"setup_ok": False, "final_status": 486}, {}, "g711")
    assert failed.up is None and failed.mos is None and failed.final_status == 486


def test_a_proxy_only_tool_is_refused_by_name_and_routed_ones_pass() -> None:
    for ok in ("direct", "shadowsocks+tun", "openvpn-udp", "wireguard"):
        check_routed("baresip", ok)
    with pytest.raises(NeedsRoutedTool, match=r"'shadowsocks'.*socks5.*shadowsocks\+tun"):
        check_routed("baresip", "shadowsocks")


def test_scenario_with_baresip_and_a_socks_tool_names_the_line_and_the_fix() -> None:
    text = "name: t\napps: [sip, baresip]\ncensors: {open: []}\ntools: [direct, shadowsocks]\n"
    with pytest.raises(ScenarioError, match=r":4:\d+: tools: .*shadowsocks\+tun"):
        parse_scenario(text)
    ok = parse_scenario(text.replace("shadowsocks", "shadowsocks+tun"))
    assert ok.baresip.codec == "g711"
    # sip alone may use the socks tool
    parse_scenario(text.replace("sip, baresip", "sip"))


def test_shipped_scenario_validates() -> None:
    scenario = load_scenario(REPO / "scenarios" / "baresip.yaml")
    assert "baresip" in scenario.apps and "sip" in scenario.apps
    assert scenario.call_seconds >= 6  # one RTCP report (every 5 s) inside the call


def test_missing_baresip_names_the_debian_package(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: nothing is installed
    with pytest.raises(MissingProgram, match=r"baresip not found.*'baresip-core'"):
        BaresipApp().check_installed()
