"""The summary model: what build_summary makes is summary.json's published content (its
keys in their order), follows the schema, reads back unchanged, and summary.json files of
every published version read into it, with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from harness.report.schema import summary_schema
from harness.report.summary import build_summary, write_summary
from harness.report.summary_model import Summary, SummaryError, load_summary
from harness.scenario import parse_scenario
from tests.unit.test_report_faults import v1_summary, with_broken_cell
from tests.unit.test_report_files import unit_results, unit_scenario
from tests.unit.test_report_scorecard import SCENARIO as SCORECARD_SCENARIO
from tests.unit.test_report_scorecard import run as scorecard_run

TOP_KEYS = ["schema_version", "scenario", "run_id", "backend", "generated_at",
            "thresholds_note", "thresholds", "cells", "scorecard", "faults", "tool_versions",
            "expectations"]  # fmt: skip
CELL_KEYS = ["censor", "tool", "app", "kind", "trials", "valid_trials", "successes", "cssr",
             "cssr_ci", "setup_ms_p50", "setup_ms_p95", "pdd_ms_p95", "mos_median", "r_median",
             "r70_share", "loss_pct_median", "jitter_ms_median", "delivery_ratio",
             "completeness", "throughput_mbps_median", "verdict", "reason", "outcomes",
             "faults", "fault_attempts", "fault_kinds", "uplift", "control_uncensored"]  # fmt: skip
CARD_KEYS = ["censor", "targets", "bystanders", "baseline", "effectiveness", "evasion",
             "collateral", "sentence"]  # fmt: skip


def summaries(tmp_path: Path) -> list[Summary]:
    """Summaries with faults, expectations, uplift and a scorecard naming a censor rule."""
    scorecard = parse_scenario(SCORECARD_SCENARIO)
    return [
        build_summary(unit_scenario(), "r1", "netns", with_broken_cell()),
        build_summary(unit_scenario(), "r1", "netns", unit_results(throttle_ok=1)),
        build_summary(scorecard, "r1", "netns", scorecard_run(tmp_path, xmpp_ok=0)),
    ]


def test_summary_json_keeps_its_keys_in_their_order(tmp_path) -> None:
    for summary in summaries(tmp_path):
        dumped = summary.model_dump(mode="json")
        assert list(dumped) == TOP_KEYS
        assert all(list(cell) == CELL_KEYS for cell in dumped["cells"])
        assert all(list(card) == CARD_KEYS for card in dumped["scorecard"])
    assert dumped["scorecard"][0]["collateral"][0]["rules"]  # a rule's shape was checked too


def test_a_fresh_summary_follows_the_schema_and_reads_back_unchanged(tmp_path) -> None:
    validator = jsonschema.Draft202012Validator(
        summary_schema(2), format_checker=jsonschema.FormatChecker()
    )
    for n, built in enumerate(summaries(tmp_path)):
        path = tmp_path / f"summary-{n}.json"
        write_summary(path, built)
        text = path.read_text()
        assert text == json.dumps(built.model_dump(mode="json"), indent=2) + "\n"
        validator.validate(json.loads(text))
        summary = load_summary(path)
        assert summary == built
        write_summary(path, summary)
        assert path.read_text() == text


def test_a_v1_summary_reads_with_what_v2_added_filled_in(tmp_path) -> None:
    data = v1_summary()
    del data["scorecard"], data["tool_versions"]  # added during version 2
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(data))
    summary = load_summary(path)
    assert summary.schema_version == 1 and summary.backend == "docker"
    assert summary.faults.attempts == summary.faults.trials == 0
    assert summary.faults.by_kind == {}
    assert summary.scorecard == [] and summary.tool_versions == {}
    for cell in summary.cells:
        assert cell.valid_trials == cell.trials
        assert (cell.faults, cell.fault_attempts, cell.fault_kinds) == (0, 0, {})
    assert summary.cells[0].verdict == data["cells"][0]["verdict"]


def test_properties_a_reader_does_not_know_are_ignored(tmp_path) -> None:
    built = build_summary(unit_scenario(), "r1", "netns", unit_results()).model_dump(mode="json")
    built["later"] = {"added": True}
    built["cells"][0]["later"] = 1
    built["thresholds"]["works_min_later"] = 0.5
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(built))
    assert load_summary(path).cells[0].verdict == built["cells"][0]["verdict"]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "summary file not found"),
        (b"\xff\xfe{}", "not UTF-8 text (byte 0xff at offset 0)"),
        (b'{"cells": [', ":1:12: summary is not valid JSON"),
        (b'{"schema_version": 7}', "schema_version 7 is not supported (this gatecrash reads 1, 2)"),
        (b'{"schema_version": true}', "schema_version True is not supported"),
        (b"[1, 2]", "not a gatecrash summary: (top level): "),
        (b'{"schema_version": 2, "scenario": "x"}',
         "not a gatecrash summary: run_id: Field required"),
    ],
)  # fmt: skip
def test_a_bad_summary_file_is_an_error_naming_it(tmp_path, content, says) -> None:
    path = tmp_path / "summary.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SummaryError) as exc:
        load_summary(path)
    assert str(exc.value).startswith(str(path)) and says in str(exc.value)


def test_a_cell_of_the_wrong_shape_is_named(tmp_path) -> None:
    built = build_summary(unit_scenario(), "r1", "netns", unit_results()).model_dump(mode="json")
    built["cells"][1]["verdict"] = "great"
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(built))
    with pytest.raises(SummaryError, match=r"not a gatecrash summary: cells\.1\.verdict: "):
        load_summary(path)
