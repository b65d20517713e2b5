"""http_filter and dns_poison with real programs: curl against python's http.server,
dig through the run's dnsmasq resolver. The censored request fails the way the technique
says (block page, reset, NXDOMAIN, sinkhole), the uncensored one passes, and the censor's
event log records the action."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.techniques.dns_poison import DnsPoison
from censor_sims.techniques.http_filter import HttpFilter
from harness.topology.dns import start_dns

pytestmark = pytest.mark.e2e


def _censor(topology, supervisor, tmp_path: Path, *techniques) -> EventLog:
    log = EventLog(tmp_path / "censor.jsonl")
    Censor(topology["censor"], list(techniques), topology.addresses.as_dict(), log, supervisor,
           tmp_path).start()  # fmt: skip
    return log


def _http_server(topology, supervisor, tmp_path: Path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("real page")
    proc = supervisor.start(topology["front"], "http",
                            [sys.executable, "-m", "http.server", "80", "--bind",
                             topology.addr("front"), "--directory", str(site)])  # fmt: skip
    proc.wait_until(lambda: topology["front"].listening(80), 5, "port 80")
    return proc


def _curl(topology, name: str, path: str = "/") -> tuple[int, str, str]:
    """(curl exit code, HTTP status, body)."""
    out = topology["client"].run(
        ["curl", "-s", "--max-time", "2", "-w", "\n%{http_code}",
         "--resolve", f"{name}:80:{topology.addr('front')}", f"http://{name}{path}"],
        check=False,
    )  # fmt: skip
    body, _, status = out.stdout.rpartition("\n")
    return out.returncode, status, body


def _events(log: EventLog, technique: str, action: str) -> list[dict]:
    return [e for e in log.read() if e["technique"] == technique and e["action"] == action]


def test_http_filter_block_page_by_host(topology, supervisor, tmp_path) -> None:
    server = _http_server(topology, supervisor, tmp_path)
    log = _censor(topology, supervisor, tmp_path,
                  HttpFilter(names=["blocked.test"], action="block_page", status=403,
                             body="<h1>gatecrash block page</h1>"))  # fmt: skip
    assert _curl(topology, "allowed.test") == (0, "200", "real page")
    code, status, body = _curl(topology, "www.blocked.test", "/secret-path")
    assert (code, status, body) == (0, "403", "<h1>gatecrash block page</h1>")
    time.sleep(0.2)
    assert "secret-path" not in server.stderr_path.read_text(), "the request reached the server"
    (event,) = _events(log, "http_filter", "block_page")
    assert event["analyzer"]["http"]["host"] == "www.blocked.test"
    assert "matches 'blocked.test'" in event["rule"]


def test_http_filter_keyword_resets_and_drop_times_out(topology, supervisor, tmp_path) -> None:
    _http_server(topology, supervisor, tmp_path)
    log = _censor(topology, supervisor, tmp_path,
                  HttpFilter(keywords=["falun"], action="rst"),
                  HttpFilter(name="host-drop", names=["dropped.test"], action="drop"))  # fmt: skip
    assert _curl(topology, "allowed.test", "/?q=weather")[:2] == (0, "200")
    assert _curl(topology, "allowed.test", "/?q=FaLun")[0] == 56  # connection reset
    assert _curl(topology, "dropped.test")[0] == 28  # timed out
    assert "'falun'" in _events(log, "http_filter", "rst")[0]["rule"]
    assert _events(log, "host-drop", "drop")


def _dig(topology, name: str) -> str:
    return topology["client"].run(
        ["dig", "+tries=1", "+time=2", "+noall", "+comments", "+answer",
         f"@{topology.addr('resolver')}", name, "A"]
    ).stdout  # fmt: skip


def _wait_events(log: EventLog, technique: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 2
    while True:
        found = [e for e in log.read() if e["technique"] == technique
                 and e.get("layer") == "resolver" and e["action"] != "install"]  # fmt: skip
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_dns_poison_resolver_nxdomain_and_sinkhole(topology, supervisor, tmp_path) -> None:
    start_dns(topology, supervisor)
    nx = DnsPoison(name="nx", mode="resolver", lie="nxdomain", names=["voip.gatecrash.test"])
    sink = DnsPoison(name="sink", mode="resolver", lie="sinkhole", names=["proxy.gatecrash.test"])
    log = _censor(topology, supervisor, tmp_path, nx, sink)
    assert "status: NXDOMAIN" in _dig(topology, "voip.gatecrash.test")
    sink = _dig(topology, "proxy.gatecrash.test")
    assert topology.addresses.addr("censor", "inside") in sink and "NOERROR" in sink
    honest = _dig(topology, "chat.gatecrash.test")
    assert topology.addr("chat") in honest and "NOERROR" in honest
    (nx,) = _wait_events(log, "nx", 1)
    assert nx["action"] == "nxdomain" and nx["qname"] == "voip.gatecrash.test"
    assert nx["client"] == topology.addr("client")
    (sink_event,) = _wait_events(log, "sink", 1)
    assert sink_event["answer"] == topology.addresses.addr("censor", "inside")
