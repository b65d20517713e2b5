"""tls_mitm's configuration: name patterns as regexes for the addon, bad input, the
missing-mitmproxy error, and the kernel rule it compiles."""

from __future__ import annotations

import re

import pytest

from censor_sims.technique import CensorContext, KernelPlan
from censor_sims.techniques import tls_mitm
from censor_sims.techniques.tls_mitm import TlsMitm, name_regex
from harness.programs import MissingProgram
from harness.scenario import ScenarioError, parse_scenario


@pytest.mark.parametrize(
    ("pattern", "mode", "hits", "misses"),
    [
        ("facebook.com", "suffix", ["facebook.com", "www.facebook.com"], ["notfacebook.com"]),
        ("facebook.com", "exact", ["facebook.com"], ["www.facebook.com", "facebookxcom"]),
        (r"^(www\.)?vk\.com$", "regex", ["vk.com", "www.vk.com"], ["m.vk.com"]),
    ],
)
def test_name_regex_matches_like_the_censor_lists(pattern, mode, hits, misses) -> None:
    regex = re.compile(name_regex(pattern, mode), re.IGNORECASE)
    assert all(regex.search(h) for h in hits)
    assert not any(regex.search(m) for m in misses)


def test_unknown_parameter_names_file_line_and_valid_keys() -> None:
    text = "name: kz\napps: [sip]\ntools: [direct]\ncensors:\n  kz:\n" \
           "    - {type: tls_mitm, domains: [x.test]}\n"  # fmt: skip
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "kz.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("kz.yaml:6:")
    assert "unknown key 'domains'" in problem
    assert "valid keys:" in problem and "names" in problem and "proxy_port" in problem


def test_bad_regex_and_one_way_direction_are_rejected() -> None:
    with pytest.raises(ValueError, match="not a valid regex"):
        TlsMitm(names=["(unclosed"], match="regex")
    with pytest.raises(ValueError, match="only direction 'both'"):
        TlsMitm(direction="upstream")


def test_missing_mitmdump_names_scripts_setup(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(tls_mitm, "MITMDUMP", tmp_path / "nowhere" / "mitmdump")
    with pytest.raises(MissingProgram, match="scripts/setup"):
        tls_mitm.mitmdump_path()


def test_compiles_to_a_nat_redirect_of_the_tls_ports() -> None:
    plan = KernelPlan()
    TlsMitm(ports=[443, 8443], proxy_port=9443).compile(CensorContext({}), plan)
    (rule,) = plan.rules
    assert (rule.table, rule.chain) == ("nat", "PREROUTING") and not plan.engine
    assert rule.spec[-4:] == ["-j", "REDIRECT", "--to-ports", "9443"]
    assert "443,8443" in rule.spec


def test_kazakhstan_profile_loads_and_cites_its_sources() -> None:
    from censor_sims.profiles import PROFILE_DIR

    scenario = parse_scenario(
        "name: kz\napps: [sip]\ntools: [direct]\ncensors: {kz: kazakhstan-2019}\n"
    )
    (mitm,) = scenario.censors["kz"]
    assert isinstance(mitm, TlsMitm) and "facebook.com" in mitm.names and mitm.ports == [443]
    text = (PROFILE_DIR / "kazakhstan-2019.yaml").read_text()
    assert "IMC 2020" in text and "censoredplanet.org/kazakhstan" in text
