"""tls_mitm with real programs: mitmproxy (transparent, on the censor host) between curl on
the client and openssl s_server on the front host. A client that validates certificates
fails; one that trusts the censor CA gets the page and is read (the event log has the URL);
a name that is not on the list passes with the server's own certificate."""

from __future__ import annotations

from pathlib import Path

import pytest

from censor_sims.censor import Censor
from censor_sims.events import EventLog
from censor_sims.techniques.tls_mitm import TlsMitm
from harness.pki import make_ca

pytestmark = pytest.mark.e2e

CURL_CERT_ERROR = 60  # "SSL certificate problem: unable to get local issuer certificate"


def _curl(topology, name: str, cacert: Path, path: str = "/") -> tuple[int, str, str]:
    out = topology["client"].run(
        ["curl", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "8",
         "--cacert", str(cacert), "--resolve", f"{name}:443:{topology.addr('front')}",
         f"https://{name}{path}"],
        check=False, timeout=15,
    )  # fmt: skip
    return out.returncode, out.stdout, out.stderr


def _issuer(topology, name: str) -> str:
    """The issuer of the certificate the client is shown for `name` (openssl s_client)."""
    out = topology["client"].run(
        ["openssl", "s_client", "-connect", f"{topology.addr('front')}:443", "-servername",
         name],
        input="", check=False, timeout=15,
    )  # fmt: skip
    text = out.stdout + out.stderr
    return next((line for line in text.splitlines() if line.startswith("issuer=")), text)


def test_tls_mitm_reads_trusting_clients_and_breaks_validating_ones(
    topology, supervisor, tmp_path
) -> None:
    run_ca = make_ca(tmp_path / "pki")
    cert, key = run_ca.issue("front", ["blocked.test", "allowed.test"], [topology.addr("front")])
    server = supervisor.start(topology["front"], "s_server",
                              ["openssl", "s_server", "-accept", "443", "-cert", str(cert),
                               "-key", str(key), "-www", "-quiet"])  # fmt: skip
    server.wait_until(lambda: topology["front"].listening(443), 5, "port 443")
    log = EventLog(tmp_path / "censor.jsonl")
    mitm = TlsMitm(names=["blocked.test"])
    censor = Censor(topology["censor"], [mitm], topology.addresses.as_dict(), log, supervisor,
                    tmp_path)  # fmt: skip
    censor.start()

    # A validating client (trusts only the real CA) sees the forged certificate and fails.
    code, _, err = _curl(topology, "blocked.test", run_ca.cert_path)
    assert code == CURL_CERT_ERROR, err
    # A client made to trust the censor CA gets the page, and the censor reads the request.
    code, status, err = _curl(topology, "blocked.test", mitm.ca_path, "/news/today?id=7")
    assert (code, status) == (0, "200"), err
    assert "gatecrash censor CA" in _issuer(topology, "blocked.test")
    # A name not on the list passes untouched: the server's own certificate, valid.
    code, status, err = _curl(topology, "allowed.test", run_ca.cert_path)
    assert (code, status) == (0, "200"), err
    assert "gatecrash run CA" in _issuer(topology, "allowed.test")

    censor.stop()
    events = [e for e in log.read() if e["technique"] == "tls_mitm"]
    actions = [e["action"] for e in events]
    assert actions.count("client-refused") >= 1 and "client-accepted" in actions
    (read,) = [e for e in events if e["action"] == "read-request"]
    assert read["host"] == "blocked.test" and read["path"] == "/news/today?id=7"
    assert read["url"] == "https://blocked.test/news/today?id=7"
    assert read["flow"].startswith(f"tcp {topology.addr('client')}:")
    assert read["flow"].endswith(f"-> {topology.addr('front')}:443")
    passed = [e for e in events if e["action"] == "pass"]
    assert passed and all(e["sni"] == "allowed.test" for e in passed)
    redirected = [e for e in events if e["action"] == "matched" and e.get("layer") == "kernel"]
    assert redirected and redirected[0]["packets"] >= 5  # one SYN per connection, 5 made
