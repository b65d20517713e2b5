"""Bad input gets a clear one-line error and exit 2, never a traceback, never a path out of
the output directory: files that are not UTF-8 text, numbers out of range, labels that
would become paths elsewhere, and typos (answered with the closest valid name)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from censor_sims.profiles import load_profile
from harness.cli import EXIT_BAD_INPUT, main
from harness.paths import OutsideOutDir, inside
from harness.scenario import ScenarioError, parse_scenario
from harness.tools.manifest import ManifestError, load_manifest, parse_manifest
from tests.unit.test_manifest import GOOD as GOOD_MANIFEST

LABEL_RULE = "use letters, digits and - _ . + (not first: . or -), at most 64 characters"
HEAD = "name: x\napps: [sip]\ntools: [direct]\ncensors:\n"


def validate(tmp_path: Path, content: bytes | str, capsys) -> tuple[int, list[str]]:
    """`gatecrash validate` of a file with `content`: exit code and stderr lines."""
    path = tmp_path / "s.yaml"
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    status = main(["validate", str(path)])
    return status, capsys.readouterr().err.splitlines()


def censor_error(tmp_path: Path, censor_line: str, capsys) -> str:
    """The one error of a scenario whose only censor is `censor_line` (line 5)."""
    status, err = validate(tmp_path, HEAD + censor_line + "\n", capsys)
    assert status == EXIT_BAD_INPUT
    (line,) = err
    return line.removeprefix(f"{tmp_path / 's.yaml'}:")


# --- files that are not UTF-8 text --------------------------------------------------------


def test_latin1_scenario_names_the_byte_and_its_offset(tmp_path, capsys) -> None:
    text = HEAD.encode() + b"  open: []  # caf\xe9\n"
    status, err = validate(tmp_path, text, capsys)
    offset = len(HEAD) + len("  open: []  # caf")
    assert status == EXIT_BAD_INPUT
    assert err == [f"{tmp_path / 's.yaml'}: not UTF-8 text (byte 0xe9 at offset {offset})"]


def test_binary_scenario_is_not_text(tmp_path, capsys) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10"
    status, err = validate(tmp_path, png, capsys)
    assert status == EXIT_BAD_INPUT
    assert err == [f"{tmp_path / 's.yaml'}: not UTF-8 text (byte 0x89 at offset 0)"]


def test_binary_file_that_decodes_is_caught_by_its_nul_bytes(tmp_path, capsys) -> None:
    status, err = validate(tmp_path, b"\x7fELF\x02\x01\x01\x00\x00\x00", capsys)
    assert status == EXIT_BAD_INPUT
    path = tmp_path / "s.yaml"
    assert err == [f"{path}: not UTF-8 text (NUL byte at offset 7: a binary file?)"]


def test_the_installed_command_prints_the_error_not_a_traceback(tmp_path) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"name: caf\xe9\n")
    gatecrash = Path(sys.executable).parent / "gatecrash"
    proc = subprocess.run(
        [str(gatecrash), "validate", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == EXIT_BAD_INPUT
    assert proc.stderr == f"{path}: not UTF-8 text (byte 0xe9 at offset 9)\n"


def test_run_with_a_binary_scenario_exits_2_and_creates_nothing(tmp_path, capsys) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(b"\xff\xfe\x00")
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == f"{path}: not UTF-8 text (byte 0xff at offset 0)\n"
    assert not (tmp_path / "out").exists()


def test_manifest_that_is_not_utf8(tmp_path) -> None:
    path = tmp_path / "tool.yaml"
    path.write_bytes(GOOD_MANIFEST.encode().replace(b"name: demo", b"name: d\xe9mo"))
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert info.value.problems == [f"{path}: not UTF-8 text (byte 0xe9 at offset 7)"]


def results_dir(tmp_path: Path, scenario_json: bytes, results: bytes) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "scenario.json").write_bytes(scenario_json)
    (run / "results.jsonl").write_bytes(results)
    return run


def good_scenario_json() -> bytes:
    scenario = parse_scenario(HEAD + "  open: []\n")
    return scenario.model_dump_json().encode()


@pytest.mark.parametrize("command", ["report", "baseline"])
def test_report_and_baseline_of_a_non_utf8_scenario_json(tmp_path, capsys, command) -> None:
    run = results_dir(tmp_path, b'{"name": "caf\xe9"}', b"")
    argv = [command, str(run)] + (["-o", str(tmp_path / "b.json")] if command == "baseline" else [])
    assert main(argv) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err == f"error: {run / 'scenario.json'}: not UTF-8 text (byte 0xe9 at offset 13)\n"


def test_report_of_binary_results_says_which_lines_are_not_text(tmp_path, capsys) -> None:
    binary = b"\x89PNG\n{\xff\n\xfe\n\xfd\n\xfc\n"
    run = results_dir(tmp_path, good_scenario_json(), binary)
    assert main(["report", str(run)]) == EXIT_BAD_INPUT
    path = run / "results.jsonl"
    assert capsys.readouterr().err == (
        f"error: {path}: no trial results to score; "
        f"{path}:1: line is not UTF-8 text (byte 0x89); skipped; "
        f"{path}:2: line is not UTF-8 text (byte 0xff); skipped; "
        f"{path}:3: line is not UTF-8 text (byte 0xfe); skipped; 2 more\n"
    )


def test_gate_with_a_non_utf8_baseline(tmp_path, capsys) -> None:
    baseline = tmp_path / "base.json"
    baseline.write_bytes(b'{"scenario": "\xff"}')
    run = results_dir(tmp_path, good_scenario_json(), b"")
    assert main(["gate", str(run), "--baseline", str(baseline)]) == EXIT_BAD_INPUT
    assert (
        capsys.readouterr().err == f"error: {baseline}: not UTF-8 text (byte 0xff at offset 14)\n"
    )


def test_deeply_nested_yaml_is_an_error_not_a_recursion_traceback(tmp_path, capsys) -> None:
    status, err = validate(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n", capsys)
    assert status == EXIT_BAD_INPUT
    assert err == [f"{tmp_path / 's.yaml'}: not valid YAML: nested too deeply"]


def test_nested_aliases_are_walked_once(tmp_path, capsys) -> None:
    """Seven levels of ten aliases: 10**7 paths (half a minute) if every alias were walked."""
    levels = ["l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]"]
    levels += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, 7)]
    text = HEAD + "  open: []\n" + "\n".join(levels) + "\n"
    started = time.monotonic()
    status, err = validate(tmp_path, text, capsys)
    assert time.monotonic() - started < 10
    assert status == EXIT_BAD_INPUT
    assert [line.split(": ", 2)[2].split(";")[0] for line in err] == [
        f"unknown key 'l{n}'" for n in range(7)
    ]


# --- numbers out of range -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("censor", "expected"),
    [
        ("  c: [{type: port_block, ports: [70000]}]",
         "5:34: censors.c.0.ports.0: port 70000 is out of range 1-65535"),
        ("  c: [{type: port_block, ports: [0]}]",
         "5:34: censors.c.0.ports.0: port 0 is out of range 1-65535"),
        ("  c: [{type: port_block, ports: [true]}]",
         "5:34: censors.c.0.ports.0: port True is not a number"),
        ("  c: [{type: tls_mitm, proxy_port: 65536}]",
         "5:24: censors.c.0.proxy_port: port 65536 is out of range 1-65535"),
        ("  c: [{type: protocol_whitelist, ports: [443, -1]}]",
         "5:47: censors.c.0.ports.1: port -1 is out of range 1-65535"),
        (f"  c: [{{type: port_block, ports: {list(range(1, 17))}}}]",
         "5:26: censors.c.0.ports: 16 items; at most 15 allowed"),
        ("  c: [{type: udp_throttle, rate: -16kbit}]",
         "5:28: censors.c.0.rate: rate '-16kbit' is negative: a rate must be more than 0; write "
         "a number and a unit, one of bit, kbit, mbit, gbit, bps, kbps, mbps (e.g. 16kbit)"),
        ("  c: [{type: udp_throttle, rate: 0kbit}]",
         "5:28: censors.c.0.rate: rate '0kbit' is below the minimum 8bit (1 byte/s): a rate "
         "must be > 0"),
        ("  c: [{type: bandwidth_throttle, names: [x], rate: 20gbit}]",
         "5:46: censors.c.0.rate: rate '20gbit' is above the maximum 10gbit"),
        ("  c: [{type: sni_filter, names: [x], action: rst, rate: 16 kbit}]",
         "5:51: censors.c.0.rate: rate '16 kbit' is not a rate; write a number and a unit, one "
         "of bit, kbit, mbit, gbit, bps, kbps, mbps (e.g. 16kbit)"),
        ("  c: [{type: port_block, ports: [5060], probability: 1.5}]",
         "5:41: censors.c.0.probability: 1.5 is out of range: must be at least 0 and at most 1"),
        ("  c: [{type: udp_throttle, loss: -0.1}]",
         "5:28: censors.c.0.loss: -0.1 is out of range: must be at least 0 and at most 1"),
        ("  c: [{type: udp_throttle, delay: 20000}]",
         "5:28: censors.c.0.delay: 20000 is out of range: must be at least 0 and at most 10000"),
        ("  c: [{type: active_probe, timeout: 0}]",
         "5:28: censors.c.0.timeout: 0 is out of range: must be more than 0 and at most 60"),
        ("  c: [{type: protocol_whitelist, residual: 99999}]",
         "5:34: censors.c.0.residual: 99999 is out of range: must be at least 0 and at most 3600"),
        ("  c: [{type: dns_poison, names: [x], ttl: 4294967296}]",
         "5:38: censors.c.0.ttl: 4294967296 is out of range: must be at least 0 and at most "
         "2147483647"),
        ("  c: [{type: bandwidth_throttle, names: [x], slots: 0}]",
         "5:46: censors.c.0.slots: 0 is out of range: must be at least 1 and at most 64"),
        ("  c: [{type: dns_poison, mode: resolver, names: [a/b]}]",
         "5:7: censors.c.0: name 'a/b' is not a DNS name (letters, digits, - and _ between "
         "dots): mode resolver hands it to dnsmasq as --address=/name/"),
    ],
)  # fmt: skip
def test_out_of_range_values(tmp_path, capsys, censor: str, expected: str) -> None:
    assert censor_error(tmp_path, censor, capsys) == expected


def test_app_option_port_and_counts(tmp_path, capsys) -> None:
    status, err = validate(
        tmp_path, HEAD + "  c: []\nsignal_like: {port: 70000}\ntrials: 0\n", capsys
    )
    assert status == EXIT_BAD_INPUT
    where = tmp_path / "s.yaml"
    assert err == [
        f"{where}:7:1: trials: 0 is out of range: must be at least 1 and at most 100000",
        f"{where}:6:15: signal_like.port: port 70000 is out of range 1-65535",
    ]


def manifest_problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "t.yaml")
    return info.value.problems


def test_manifest_ports_are_checked() -> None:
    bad = GOOD_MANIFEST.replace("server: 9000", "server: 70000")
    assert manifest_problems(bad) == [
        "t.yaml:6:9: ports.server: port 70000 is out of range 1-65535"
    ]
    bad = GOOD_MANIFEST.replace('port: "{port.server}"', "port: 0")
    assert manifest_problems(bad) == [
        "t.yaml:13:32: server.0.ready.port: port 0 is out of range 1-65535"
    ]
    bad = GOOD_MANIFEST.replace('"127.0.0.1:{port.local}"', '"127.0.0.1:99999"')
    assert manifest_problems(bad) == ["t.yaml:4:1: endpoint: port 99999 is out of range 1-65535"]


# --- labels -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + "  a/../../b: []\n",
         f"5:3: censors.a/../../b: censor name 'a/../../b' is not a safe name: it contains "
         f"'/'; {LABEL_RULE}"),
        (HEAD + "  ..: []\n",
         f"5:3: censors...: censor name '..' is not a safe name: it contains '..'; {LABEL_RULE}"),
        (HEAD + "  .hidden: []\n",
         f"5:3: censors..hidden: censor name '.hidden' is not a safe name: it starts with '.'; "
         f"{LABEL_RULE}"),
        (HEAD + f"  {'c' * 65}: []\n",
         f"5:3: censors.{'c' * 65}: censor name '{'c' * 65}' is not a safe name: it is 65 "
         f"characters long; {LABEL_RULE}"),
        ("name: ../up\napps: [sip]\ntools: [direct]\ncensors: {c: []}\n",
         f"1:1: name: scenario name '../up' is not a safe name: it contains '/'; {LABEL_RULE}"),
        ("name: x\napps: [sip]\ntools: [../direct]\ncensors: {c: []}\n",
         f"3:9: tools.0: tool name '../direct' is not a safe name: it contains '/'; {LABEL_RULE}"),
        ("name: x\napps: [-sip]\ntools: [direct]\ncensors: {c: []}\n",
         f"2:8: apps.0: app name '-sip' is not a safe name: it starts with '-'; {LABEL_RULE}"),
        (HEAD + "  c: [{type: tls_mitm, name: ../../x}]\n",
         "5:24: censors.c.0.name: technique name '../../x' is not a safe name: it contains "
         "'/'; use letters, digits and - _ . + and spaces (not first: . or -), at most 64 "
         "characters"),
    ],
)  # fmt: skip
def test_unsafe_labels(tmp_path, capsys, text: str, expected: str) -> None:
    status, err = validate(tmp_path, text, capsys)
    assert status == EXIT_BAD_INPUT
    assert err == [f"{tmp_path / 's.yaml'}:{expected}"]


def test_manifest_file_names_stay_in_the_tool_directory() -> None:
    bad = GOOD_MANIFEST.replace("  c.json:", "  ../c.json:")
    (problem,) = manifest_problems(bad)
    assert problem == (
        f"t.yaml:9:3: files.../c.json: file name '../c.json' is not a safe name: it contains "
        f"'/'; {LABEL_RULE}"
    )


def test_profile_name_is_never_a_path() -> None:
    with pytest.raises(ValueError, match=r"unknown censor profile '\.\./\.\./etc/passwd'; "):
        load_profile("../../etc/passwd")


# --- did you mean -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\napps: [sipp]\ntools: [direct]\ncensors: {c: []}\n",
         "2:1: apps: unknown app 'sipp' (did you mean 'sip'?); valid apps: baresip, conference, "
         "dns, download, office-vpn, signal-like, sip, telegram-like, web, webrtc, "
         "whatsapp-like, xmpp"),
        ("name: x\napps: [sip]\ntools: [shadowsock]\ncensors: {c: []}\n",
         "3:1: tools: unknown tool 'shadowsock' (did you mean 'shadowsocks'?); valid tools: "),
        (HEAD + "  c: [{type: port_blok, ports: [5060]}]\n",
         "5:7: censors.c.0: unknown technique type 'port_blok' (did you mean 'port_block'?); "
         "valid types: active_probe, bandwidth_throttle, dns_poison, dpi_block, fet_block, "
         "fingerprint_block, http_filter, ip_block, port_block, protocol_whitelist, "
         "sni_filter, tls_mitm, udp_throttle"),
        (HEAD + "  c: [{type: port_block, ports: [5060], acton: drop}]\n",
         "5:41: censors.c.0.acton: unknown key 'acton' (did you mean 'action'?); valid keys: "
         "action, direction, invert, name, ports, probability, proto, type"),
        (HEAD + "  c: gfw-2032\n",
         "5:3: censors.c: unknown censor profile 'gfw-2032' (did you mean 'gfw-2023'?); "
         "shipped: gfw-2023, iran-2020, kazakhstan-2019, russia-telegram-2018, "
         "russia-tspu-2021, russia-tspu-dtls-2021, voip-blocker"),
        (HEAD + "  c: []\nsip: {trasnport: tcp}\n",
         "6:7: sip.trasnport: unknown key 'trasnport' (did you mean 'transport'?); valid keys: "
         "codec, setup_timeout_s, transport"),
        (HEAD + "  c: []\nsip: {transport: tpc}\n",
         "6:7: sip.transport: 'tpc' is not allowed (did you mean 'tcp'?); input should be "
         "'udp' or 'tcp'"),
        (HEAD + "  c: []\nexpect: [{censor: c, tool: direct, app: sip, verdict: work}]\n",
         "6:46: expect.0.verdict: unknown verdict 'work' (did you mean 'works'?); valid "
         "verdicts: "),
        (HEAD + "  open: []\nexpect: [{censor: opne, tool: direct, app: sip, verdict: works}]\n",
         "6:11: expect.0.censor: censor 'opne' is not in this scenario (did you mean 'open'?); "
         "valid: open"),
    ],
)  # fmt: skip
def test_typos_get_the_closest_name(tmp_path, capsys, text: str, expected: str) -> None:
    status, err = validate(tmp_path, text, capsys)
    assert status == EXIT_BAD_INPUT
    (line,) = err
    assert line.startswith(f"{tmp_path / 's.yaml'}:{expected}")


def test_manifest_key_typo_gets_the_closest_key() -> None:
    (problem,) = manifest_problems(GOOD_MANIFEST.replace("capabilities:", "capabilites:"))
    assert problem.startswith(
        "t.yaml:5:1: capabilites: unknown key 'capabilites' (did you mean 'capabilities'?); "
        "valid keys: "
    )


def test_no_suggestion_when_nothing_is_close() -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario("name: x\napps: [zzzz]\ntools: [direct]\ncensors: {c: []}\n", "s.yaml")
    assert "did you mean" not in info.value.problems[0]


# --- the output directory -----------------------------------------------------------------


def test_inside_joins_parts_under_the_out_dir(tmp_path) -> None:
    assert inside(tmp_path, "trials", "open", "direct", "sip", "0") == (
        tmp_path / "trials/open/direct/sip/0"
    )
    assert inside(tmp_path) == tmp_path


@pytest.mark.parametrize(
    "parts",
    [("trials", "a/../../../b", "direct", "sip", "0"), ("..",), ("trials", "/etc"), ("..", "x")],
)
def test_inside_refuses_paths_that_leave_the_out_dir(tmp_path, parts) -> None:
    out = tmp_path / "out"
    with pytest.raises(OutsideOutDir) as info:
        inside(out, *parts)
    assert str(info.value).startswith(f"{'/'.join(parts)!r} resolves to ")
    assert str(info.value).endswith(
        f", outside the output directory {out.resolve()}: refusing to write there"
    )


def test_inside_refuses_a_symlink_out_of_the_out_dir(tmp_path) -> None:
    out = tmp_path / "out"
    (out / "trials").mkdir(parents=True)
    (out / "trials" / "open").symlink_to(tmp_path)
    with pytest.raises(OutsideOutDir):
        inside(out, "trials", "open", "direct")
