"""Documented over-blocking, measured on the shipped profiles: each bystander works on the
open network, is broken by the profile, and the scorecard names it as collateral damage
with the rule the censor's event log shows acting on it.

- russia-tspu-2021: the `*t.co*` rule of 10-11 March 2021 (Xue et al., IMC 2021) throttles
  the web bystander's static host, static.intranet.corp.<zone> (`t.co` as in microsoft.com);
- russia-telegram-2018: blocking Telegram's address takes down the site hosted on the same
  address (Meduza, 17 April 2018: cloud ranges blocked, unrelated services down);
- russia-tspu-dtls-2021: the DTLS ClientHello fingerprint aimed at Snowflake drops a
  business WebRTC call on the same stack (pojntfx/weron issue 5: pion-based apps filtered).

One trial a cell, only the cells asserted on. With one trial the Wilson interval of 1/1 is
[0.21, 1], so the limits are 0.2 (works needs its lower bound at 0.2); the harmed verdicts
need no interval: a page-load time over the 5000 ms limit (degraded), no item done
(blocked), a call set up without media (media-blocked) are measured in the one trial.
"""

from __future__ import annotations

import time

import pytest
from rich.console import Console

from censor_sims.profiles import load_profile
from harness.report.scorecard_view import print_scorecard
from harness.report.summary import build_summary
from harness.runner import Runner
from harness.scenario import parse_scenario

pytestmark = pytest.mark.e2e

ONE_TRIAL = "trials: 1\ntools: [direct]\nthresholds: {works_min_cssr_lower: 0.2, " \
    "blocked_max_cssr_upper: 0.2}\n"  # fmt: skip
# 2 resources of 128 KB on the static host: ~7.5 s each at 140 kbit/s, over the 5 s limit.
WEB = (
    ONE_TRIAL
    + """name: e2e-overblocking-web
apps: [web]
web: {resources: 4, resource_kb: 128, timeout_s: 15}
censors:
  open: []
  russia-tspu-2021: russia-tspu-2021
  russia-telegram-2018: russia-telegram-2018
"""
)
# 2 s per ICE attempt: the three attempts (UDP, TURN/TLS, TURN/TCP) give up in ~6 s.
WEBRTC = (
    ONE_TRIAL
    + """name: e2e-overblocking-webrtc
apps: [webrtc]
call_seconds: 1
webrtc: {attempt_timeout_s: 2}
censors:
  open: []
  russia-tspu-dtls-2021: russia-tspu-dtls-2021
"""
)


def _run(text: str, out, jobs: int) -> dict:
    scenario = parse_scenario(text)
    runner = Runner(scenario, out, jobs=jobs)
    summary = build_summary(scenario, runner.run_id, "netns", runner.run())
    console = Console(record=True, width=200)
    print_scorecard(summary, console)
    printed = console.export_text()
    print(printed)
    return summary.model_dump(mode="json") | {"printed": printed}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    started = time.monotonic()
    web = _run(WEB, tmp_path_factory.mktemp("overblock-web"), jobs=3)
    webrtc = _run(WEBRTC, tmp_path_factory.mktemp("overblock-webrtc"), jobs=2)
    return {"web": web, "webrtc": webrtc, "wall_s": time.monotonic() - started}


def _verdict(summary: dict, censor: str, app: str) -> str:
    (cell,) = [c for c in summary["cells"] if (c["censor"], c["app"]) == (censor, app)]
    return cell["verdict"]


def _collateral(summary: dict, censor: str, app: str) -> dict:
    (card,) = [c for c in summary["scorecard"] if c["censor"] == censor]
    (entry,) = [e for e in card["collateral"] if e["app"] == app]
    assert card["sentence"] in summary["printed"]
    return entry | {"sentence": card["sentence"]}


def test_the_tco_substring_throttles_the_web_bystander(runs) -> None:
    web = runs["web"]
    assert _verdict(web, "open", "web") == "works"
    assert _verdict(web, "russia-tspu-2021", "web") == "degraded"
    entry = _collateral(web, "russia-tspu-2021", "web")
    assert entry["harmed"] is True and entry["open_verdict"] == "works"
    assert entry["workload_ratio"]["duration"] > 5, entry  # 7.5 s against well under 1 s
    # Only the March 10 substring rule acted: the Twitter suffixes do not match the name.
    assert {r["technique"] for r in entry["rules"]} == {"tspu-march-2021-tco"}
    rule = entry["rules"][0]["rule"]
    assert "'static.intranet.corp.gatecrash.test' matches 't\\\\.co' (regex)" in rule, rule
    assert "it also broke: web (degraded, duration x" in entry["sentence"]
    assert entry["sentence"].endswith("by tspu-march-2021-tco).")


def test_blocking_telegrams_address_takes_down_the_site_on_it(runs) -> None:
    web = runs["web"]
    assert load_profile("russia-telegram-2018")["targets"] == ["telegram-like"]
    assert _verdict(web, "russia-telegram-2018", "web") == "blocked"
    entry = _collateral(web, "russia-telegram-2018", "web")
    assert entry["harmed"] is True and entry["delivery"] == -1.0
    (rule,) = {(r["technique"], r["rule"].split()[0]) for r in entry["rules"]}
    assert rule == ("rkn-telegram-ips", "drop")
    # A page load is not a call: its loss is worded as workloads completed and items done.
    assert "web (blocked, completed -100 points, completeness -100 points, by rkn-telegram-ips)"\
        in entry["sentence"]  # fmt: skip
    assert "CSSR" not in entry["sentence"] and "delivery" not in entry["sentence"]


def test_a_dtls_fingerprint_drops_a_business_webrtc_call(runs) -> None:
    webrtc = runs["webrtc"]
    assert _verdict(webrtc, "open", "webrtc") == "works"
    assert _verdict(webrtc, "russia-tspu-dtls-2021", "webrtc") == "media-blocked"
    entry = _collateral(webrtc, "russia-tspu-dtls-2021", "webrtc")
    assert entry["harmed"] is True and entry["mos"] < -2
    (rule,) = entry["rules"]
    assert rule["technique"] == "tspu-dtls-fingerprint" and rule["analyzer"] == "dtls"
    (fingerprint,) = load_profile("russia-tspu-dtls-2021")["techniques"][0]["fingerprints"]
    assert rule["rule"] == (
        f"dtls ClientHello fingerprint: DTLS1.2, extensions {fingerprint['extensions']}"
    )


def test_the_runs_are_short(runs) -> None:
    assert runs["wall_s"] < 60
