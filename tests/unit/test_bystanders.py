"""The bystander apps' pieces that need no network: curl's figures and exit statuses read
as outcomes, the site's layout, the update server's published digest, and the run zone's
ordinary names."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest

from harness.apps.curl import Transfer, outcome, parse_write_out
from harness.apps.https_site import _blobs
from harness.apps.web.site import CDN_HOST, STATIC_HOST, page_html, resource_urls, write_site
from harness.topology.dns import zone_records


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        (35, "Recv failure: Connection reset by peer", "reset"),
        (56, "Recv failure: Connection reset by peer", "reset"),
        (6, "Could not resolve host: www.gatecrash.test", "dns-failure"),
        (28, "Connection timed out after 3000 milliseconds", "timeout"),
        (7, "Failed to connect to updates.gatecrash.test port 443: Couldn't connect", "refused"),
        (60, "SSL certificate problem: unable to get local issuer certificate", "tls-alert"),
        (97, "Can't complete SOCKS5 connection to www.gatecrash.test. (4)", "error"),
    ],
)
def test_curl_exit_statuses_become_outcome_classes(code: int, message: str, expected: str) -> None:
    assert outcome(Transfer("https://x/", {"exitcode": code, "errormsg": message})) == expected


def test_write_out_lines_are_matched_to_urls_even_after_a_progress_meter() -> None:
    a, b, c = "https://a/1", "https://b/2", "https://c/3"
    line = {"url": b, "exitcode": 0, "http_code": 200, "size_download": 5, "time_total": 0.25}
    stderr = "DL% UL%  Dled\n--  --  0 " + json.dumps(line) + "\n" + json.dumps({"url": a}) + "\n"
    got = parse_write_out(stderr, [a, b, c])
    assert [t.url for t in got] == [a, b, c]
    assert got[1].ok and got[1].ms == 250.0 and got[1].bytes == 5
    assert not got[0].ok and not got[2].ok and "no figures" in got[2].failure()


def test_the_site_spreads_resources_over_static_and_cdn(tmp_path) -> None:
    urls = resource_urls(5)
    assert [u.split("/")[2] for u in urls] == [STATIC_HOST, CDN_HOST] * 2 + [STATIC_HOST]
    front, cdn = write_site(tmp_path, 5, 100)
    assert all(u in page_html(urls) for u in urls)
    assert len(list(front.rglob("r*"))) == 3 and len(list(cdn.rglob("r*"))) == 2
    assert (front / "s" / "r0.css").stat().st_size == 100


def test_the_update_server_publishes_the_digest_of_what_it_serves() -> None:
    blobs = _blobs("/update.bin:4096")
    body = blobs["/update.bin"]
    assert len(body) == 4096
    assert blobs["/update.bin.sha256"].decode().split() == [
        hashlib.sha256(body).hexdigest(),
        "update.bin",
    ]


def test_the_zone_holds_the_hosts_and_the_ordinary_names() -> None:
    addrs = {"voip": "10.0.0.1", "chat": "10.0.0.2", "proxy": "10.0.0.3", "dns": "10.0.0.4",
             "front": "10.0.0.5"}  # fmt: skip
    topology = SimpleNamespace(addr=addrs.__getitem__)
    records = zone_records(topology)  # type: ignore[arg-type]
    static = records["static.intranet.corp.gatecrash.test"]
    assert records["www.gatecrash.test"] == static == "10.0.0.2"
    assert records["cdn.gatecrash.test"] == records["updates.gatecrash.test"] == "10.0.0.1"
    assert len(records) == 9
