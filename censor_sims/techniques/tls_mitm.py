"""TLS interception with a censor CA, the way Kazakhstan did it in July-August 2019
(Raman et al., "Kazakhstan's HTTPS Interception", IMC 2020; Censored Planet report, 2019):
connections to port 443 are redirected to an intercepting proxy that presents a certificate
issued on the fly by the censor's own root ("Qaznet Trust Network"), for a list of domains
only; other names pass with the real certificate.

Here the proxy is mitmproxy 11 in transparent mode on the censor host (iptables nat
REDIRECT; mitmproxy reads the original destination with SO_ORIGINAL_DST). Clients that
validate certificates fail the handshake; clients that were made to trust the censor CA
(the citizens told to install it) succeed, and every request they make is read and logged.
mitmproxy runs from its own virtualenv, .venv-mitm, because it pins pyOpenSSL <= 24.3 while
the WebRTC app needs >= 25.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from pydantic import Field, PrivateAttr, model_validator

from censor_sims.technique import INSIDE_IF, CensorContext, KernelPlan, MultiPorts, Technique
from censor_sims.techniques._names import MatchMode, check_regexes
from harness.fields import Port
from harness.pki import make_ca
from harness.programs import MissingProgram

CHECKOUT = Path(__file__).resolve().parents[2]
MITMDUMP = CHECKOUT / ".venv-mitm" / "bin" / "mitmdump"
ADDON = CHECKOUT / "censor_sims" / "mitm_addon.py"
CA_NAME = "gatecrash censor CA (tls_mitm)"
START_TIMEOUT_S = 20.0  # mitmdump imports a lot; on a busy 2-core box it takes seconds


def mitmdump_path() -> Path:
    """The mitmdump of the checkout's .venv-mitm, or an error saying how to get it."""
    if not MITMDUMP.is_file():
        raise MissingProgram(
            f"tls_mitm needs mitmproxy's mitmdump at {MITMDUMP}: run scripts/setup, which "
            "creates .venv-mitm with mitmproxy 11.0.2 (kept apart from .venv: it pins "
            "pyOpenSSL <= 24.3)"
        )
    return MITMDUMP


def name_regex(pattern: str, mode: MatchMode) -> str:
    """One of the censor's name patterns as a regex over the lower-cased SNI (the addon in
    mitmdump cannot import gatecrash, so the matching travels as regexes)."""
    p = pattern.lower().rstrip(".")
    if mode == "exact":
        return f"^{re.escape(p)}$"
    if mode == "suffix":
        return f"(^|\\.){re.escape(p)}$"
    return pattern


class TlsMitm(Technique):
    summary = "intercept TLS with a censor CA via mitmproxy (Kazakhstan 2019); log requests"
    type: Literal["tls_mitm"] = "tls_mitm"
    names: list[str] = Field(
        default=[], description="SNIs to intercept (empty: every TLS connection on the ports)"
    )
    match: MatchMode = Field(default="suffix", description="exact, suffix or regex")
    ports: MultiPorts = Field(default=[443], description="server ports redirected")
    proxy_port: Port = Field(default=8443, description="port mitmproxy listens on (censor host)")
    _ca_path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _regexes_compile(self) -> TlsMitm:
        check_regexes(self.names, self.match)
        if self.direction != "both":
            raise ValueError(
                f"direction {self.direction!r}: tls_mitm proxies whole connections, so only "
                "direction 'both' applies"
            )
        return self

    @property
    def ca_path(self) -> Path:
        """The censor CA certificate (PEM) clients must trust to be read; set by start()."""
        if self._ca_path is None:
            raise RuntimeError("tls_mitm has not been started: no censor CA yet")
        return self._ca_path

    def compile(self, ctx: CensorContext, plan: KernelPlan) -> None:
        ports = ",".join(str(p) for p in self.ports)
        match = ["-i", INSIDE_IF, "-p", "tcp", "-m", "multiport", "--dports", ports]
        sample = self.flow_sample(ctx, plan, match)
        plan.add("nat", "PREROUTING",
                 [*match, *sample, "-j", "REDIRECT", "--to-ports", str(self.proxy_port)],
                 self.label, f"redirect TLS to tcp {ports} into mitmproxy")  # fmt: skip

    def start(self, censor: Any) -> None:
        mitmdump = mitmdump_path()
        if censor.supervisor is None or censor.workdir is None:
            raise RuntimeError("tls_mitm needs the censor's supervisor and workdir")
        confdir = Path(censor.workdir) / f"mitm-{self.label}"
        ca = make_ca(confdir / "ca", CA_NAME)
        key_pem = ca.key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption())  # fmt: skip
        cert_pem = ca.cert.public_bytes(serialization.Encoding.PEM)
        (confdir / "mitmproxy-ca.pem").write_bytes(key_pem + cert_pem)  # key + cert, as wanted
        self._ca_path = confdir / "censor-ca.pem"
        self._ca_path.write_bytes(cert_pem)
        config = confdir / "addon.json"
        config.write_text(json.dumps({
            "technique": self.label,
            "events": str(censor.log.path.resolve()),
            "patterns": [name_regex(n, self.match) for n in self.names],
        }))  # fmt: skip
        argv = [str(mitmdump), "--mode", "transparent", "--listen-port", str(self.proxy_port),
                "--set", f"confdir={confdir}", "--set", "ssl_insecure=true",
                "--set", "termlog_verbosity=warn", "-s", str(ADDON)]  # fmt: skip
        proc = censor.supervisor.start(censor.host, f"mitmdump-{self.label}", argv,
                                       env={"GATECRASH_MITM_CONFIG": str(config)})  # fmt: skip
        proc.wait_until(lambda: censor.host.listening(self.proxy_port), START_TIMEOUT_S,
                        f"mitmdump listening on {self.proxy_port}")  # fmt: skip
        censor.log.emit(self.label, "start", layer="mitm", ca=str(self._ca_path),
                        names=self.names, match=self.match, ports=self.ports)  # fmt: skip
