"""The reproduce core without namespaces: rows, the table, JSON, the crafted payloads (each
sits on the side of its FET rule it claims to), and the command's bad-input handling."""

from __future__ import annotations

import json

import pytest

from censor_sims.analyzers.fet import evaluate
from censor_sims.analyzers.tls import TlsAnalyzer
from censor_sims.techniques.protocol_whitelist import looks_allowed
from harness.cli import main
from harness.reproduce import CASES, case_module
from harness.reproduce.core import (
    CaseReport,
    Measured,
    Published,
    Row,
    count_row,
    render,
    share_text,
    to_json,
    write_json,
)
from harness.reproduce.payloads import (
    client_hello,
    dns_query_tcp,
    exemption_pairs,
    fully_encrypted,
    http_get,
)

PUB = Published("60 s", "Bock et al., FOCI 2020", "residual")


def test_count_row_agrees_only_when_all_behaved() -> None:
    assert count_row("q", PUB, 3, 3, "ok").agrees
    assert not count_row("q", PUB, 2, 3, "ok").agrees
    assert not count_row("q", PUB, 0, 0, "ok").agrees  # nothing measured is no agreement


def test_share_text_states_the_wilson_interval_and_its_width() -> None:
    value, spread = share_text(13, 50)
    assert value == "13/50 = 26.0%"
    assert spread.startswith("95% Wilson 15.9%-39.6%") and "width 23.7 pts" in spread


def test_report_agrees_only_with_rows_all_agreeing_and_no_error() -> None:
    good = Row("q", PUB, Measured("60 s", "", 1), True, "t")
    bad = Row("q2", PUB, Measured("1 s", "", 1), False, "t", "why", finding=True)
    assert CaseReport("c", "T", "quick", rows=[good]).agrees
    assert not CaseReport("c", "T", "quick", rows=[good, bad]).agrees
    assert not CaseReport("c", "T", "quick", rows=[]).agrees
    assert not CaseReport("c", "T", "quick", rows=[good], error="boom").agrees


def test_table_and_json_carry_every_column(tmp_path) -> None:
    rows = [Row("window", PUB, Measured("blocked at 2.7 s", "configured 3 s", 2), False,
                "bracket", "a finding", finding=True)]  # fmt: skip
    report = CaseReport("iran", "Iran", "quick", {"residual_s": 3}, rows, wall_s=5.5)
    text = render([report])
    parts = ["quantity", "published", "measured", "agrees", "NO", "Bock et al., FOCI 2020",
             "configured 3 s", "tolerance: bracket", "note:      a finding", "5.5 s"]  # fmt: skip
    for part in parts:
        assert part in text
    write_json(tmp_path / "r.json", [report])
    data = json.loads((tmp_path / "r.json").read_text())
    assert data == to_json([report])
    assert data["agrees"] is False and data["cases"][0]["rows"][0]["finding"] is True
    assert data["cases"][0]["rows"][0]["published"]["section"] == "residual"


@pytest.mark.parametrize("rule", list(exemption_pairs()))
def test_exemption_payloads_sit_on_either_side_of_their_rule(rule: str) -> None:
    exempt, miss, _, _ = exemption_pairs()[rule]
    assert evaluate(exempt)["exemptions"] == [rule]
    assert evaluate(miss)["exemptions"] == [] and evaluate(miss)["yes"]


def test_fully_encrypted_payloads_have_no_exemption_and_differ() -> None:
    payloads = [fully_encrypted(i) for i in range(20)]
    assert all(evaluate(p)["yes"] for p in payloads)
    assert len(set(payloads)) == 20


def test_protocol_openings_are_what_the_analyzers_recognise() -> None:
    assert looks_allowed(dns_query_tcp()) == "dns"
    assert looks_allowed(http_get()) == "http"
    hello = client_hello("abs.twimg.com")
    assert looks_allowed(hello) == "tls"
    stream = TlsAnalyzer().new_tcp(None)  # type: ignore[arg-type]
    props, _ = stream.feed(False, hello)
    assert props["sni"] == "abs.twimg.com"


def test_every_case_module_names_itself_and_cites_its_paper() -> None:
    for name in CASES:
        module = case_module(name)
        assert name == module.NAME
        assert module.TITLE and callable(module.run)
        assert module.__doc__ and module.PAPER.split()[0] in module.__doc__


def test_list_and_unknown_case(capsys) -> None:
    assert main(["reproduce", "--list"]) == 0
    listed = capsys.readouterr().out
    assert all(name in listed for name in CASES)
    assert main(["reproduce", "gfw-fet-2024"]) == 2
    err = capsys.readouterr().err
    assert "unknown case 'gfw-fet-2024' (did you mean 'gfw-fet-2023'?)" in err
    assert "valid cases:" in err and "russia-tspu-2021" in err


def test_voip_and_quic_payloads_are_what_the_analyzers_recognise() -> None:
    from censor_sims.analyzers.base import get
    from harness.reproduce.payloads import (
        dtls_client_hello,
        quic_initial,
        rtp_packets,
        sip_options,
        stun_binding_request,
    )

    def first_props(name: str, grams: list[bytes]) -> dict:
        stream = get(name).new_udp(None)  # type: ignore[arg-type]
        found: dict = {}
        for gram in grams:
            props, _ = stream.feed(False, gram)
            found.update(props or {})
        return found

    assert first_props("sip", [sip_options()])["method"] == "OPTIONS"
    assert first_props("rtp", rtp_packets(4))["yes"] is True
    assert first_props("stun", [stun_binding_request()])["method"] == "binding"
    assert first_props("dtls", [dtls_client_hello()])["use_srtp"] is True
    assert first_props("quic", quic_initial("10.0.0.1", "www.google.com"))["sni"] == (
        "www.google.com"
    )
