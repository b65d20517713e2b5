"""Kazakhstan's 2019 HTTPS interception, reproduced on the shipped `kazakhstan-2019` profile:
mitmproxy on the censor host, openssl s_server as the real site, curl and openssl s_client
as the users.

Raman, Evdokimov, Wustrow, Halderman, Ensafi: "Investigating Large Scale HTTPS Interception
in Kazakhstan", IMC 2020 (and Censored Planet's July 2019 report). Published behaviour
checked here:
  - interception was triggered by the TLS SNI of connections to port 443 and applied to a
    list of 37 domains (Facebook, Google, Twitter, VK, Instagram, YouTube, ok.ru, mail.ru,
    ...): those got a certificate issued on the fly by the "Qaznet Trust Network" root;
  - other names passed with their real certificate;
  - browsers that did not trust the root failed with a certificate error; users who
    installed the root (as they were told to) had their traffic decrypted and read.
Interception ran 17 July - 7 August 2019 on a subset of Kazakhtelecom's paths; here every
path crosses the censor.
"""

from __future__ import annotations

from pathlib import Path

from harness.pki import make_ca
from harness.reproduce.core import CaseReport, Published, count_row
from harness.reproduce.lab import Lab, profile_technique

NAME = "kazakhstan-mitm-2019"
TITLE = "Kazakhstan's HTTPS interception (Raman et al., IMC 2020)"
PAPER = "Raman et al., IMC 2020"
CURL_CERT_ERROR = 60


def run(quick: bool, workdir: Path) -> CaseReport:
    listed = ["www.facebook.com", "vk.com"] if quick else [
        "www.facebook.com", "vk.com", "www.google.com", "www.youtube.com", "mail.ru"]  # fmt: skip
    unlisted = ["wikipedia.org"] if quick else ["wikipedia.org", "example.kz", "github.com"]
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"profile": "kazakhstan-2019", "listed": listed,
                         "unlisted": unlisted})  # fmt: skip
    mitm = profile_technique("kazakhstan-2019", "qaznet-mitm")
    with Lab(workdir) as lab:
        run_ca = make_ca(lab.workdir / "site-pki")
        cert, key = run_ca.issue("front", [*listed, *unlisted], [lab.addr("front")])
        server = lab.supervisor.start(lab.topology["front"], "s_server",
                                      ["openssl", "s_server", "-accept", "443", "-cert",
                                       str(cert), "-key", str(key), "-www", "-quiet"])  # fmt: skip
        server.wait_until(lambda: lab.topology["front"].listening(443), 5, "port 443")
        lab.censor(mitm)
        client = lab.topology["client"]

        def issuer(name: str) -> str:
            out = client.run(["openssl", "s_client", "-connect", f"{lab.addr('front')}:443",
                              "-servername", name], input="", check=False, timeout=20)  # fmt: skip
            text = out.stdout + out.stderr
            return next((ln for ln in text.splitlines() if ln.startswith("issuer=")), "")

        def curl(name: str, cacert: Path, path: str) -> tuple[int, str]:
            out = client.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "--max-time", "10", "--cacert", str(cacert), "--resolve",
                              f"{name}:443:{lab.addr('front')}", f"https://{name}{path}"],
                             check=False, timeout=20)  # fmt: skip
            return out.returncode, out.stdout

        forged = sum("gatecrash censor CA" in issuer(n) for n in listed)
        real = sum("gatecrash run CA" in issuer(n) for n in unlisted)
        refused = sum(curl(n, run_ca.cert_path, "/")[0] == CURL_CERT_ERROR for n in listed)
        paths = {n: f"/private/{i}?user=alice" for i, n in enumerate(listed)}
        served = sum(curl(n, mitm.ca_path, paths[n]) == (0, "200") for n in listed)  # type: ignore[attr-defined]
        reads = {(e.get("host"), e.get("path")) for e in lab.events("read-request")}
        read = sum((n, paths[n]) in reads for n in listed)
        unlisted_ok = sum(curl(n, run_ca.cert_path, "/") == (0, "200") for n in unlisted)
    section = "interception: triggers and scope"
    report.rows += [
        count_row("listed domains get the censor root's certificate",
                  Published("certificate from the Qaznet Trust Network root, by SNI, for 37 "
                            "listed domains", PAPER, section),
                  forged, len(listed), "listed names shown a censor-CA certificate"),
        count_row("other names",
                  Published("not intercepted: the real certificate", PAPER, section),
                  real, len(unlisted), "unlisted names shown the site's own certificate"),
        count_row("other names load for a validating client",
                  Published("work", PAPER, section), unlisted_ok, len(unlisted),
                  "HTTPS fetches of unlisted names returned 200"),
        count_row("a client without the root (validating)",
                  Published("fails with a certificate error", PAPER, "user impact"),
                  refused, len(listed), "curl fetches failed with a certificate error (60)"),
        count_row("a client that installed the root: served",
                  Published("works", PAPER, "user impact"), served, len(listed),
                  "curl fetches trusting the censor root returned 200"),
        count_row("a client that installed the root: read",
                  Published("its requests are decrypted and readable", PAPER, "user impact"),
                  read, len(listed), "request paths (with query) read by the censor"),
    ]  # fmt: skip
    return report
