"""The command line: exit codes and messages a user (or CI) acts on."""

from __future__ import annotations

from pathlib import Path

from harness.cli import EXIT_BAD_INPUT, EXIT_OK, main

REPO = Path(__file__).resolve().parents[2]


def test_validate_quickstart_ok(capsys) -> None:
    assert main(["validate", str(REPO / "scenarios/quickstart.yaml")]) == EXIT_OK
    assert "12 cells" in capsys.readouterr().out


def test_validate_bad_file_exits_2_with_location(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\napps: [sip]\ntools: [tor]\ncensors: {open: []}\n")
    assert main(["validate", str(bad)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{bad}:3:" in err and "'tor'" in err and "shadowsocks" in err


def test_run_with_bad_scenario_starts_nothing(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\napps: [sip]\ntools: [direct]\ncensors: {open: [{type: nope}]}\n")
    assert main(["run", str(bad), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert not (tmp_path / "out").exists()
    assert "valid types" in capsys.readouterr().err


def test_censors_list_shows_every_technique(capsys) -> None:
    assert main(["censors", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("port_block", "ip_block", "udp_throttle"):
        assert name in out
