"""mitmproxy addon of the `tls_mitm` censor: decides which TLS flows to intercept and writes
every interception, refusal and request it reads to the trial's censor.jsonl.

It runs inside mitmdump, in the separate mitmproxy virtualenv (.venv-mitm), so it imports
nothing from gatecrash: its whole configuration is a JSON file named by the environment
variable GATECRASH_MITM_CONFIG, and its events use the censor's event format (censor_sims/
events.py: time, technique, action, then fields).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only mitmdump's own environment has mitmproxy
    from mitmproxy import http, tls

CONFIG_ENV = "GATECRASH_MITM_CONFIG"


def _peer(address: Any) -> str:
    if not address:
        return "?"
    return f"{address[0]}:{address[1]}"


class CensorMitm:
    """Intercepts TLS whose SNI matches one of the patterns; lets the rest through untouched."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.technique: str = config["technique"]
        self.events: str = config["events"]
        self.patterns = [re.compile(p, re.IGNORECASE) for p in config["patterns"]]
        self._lock = threading.Lock()

    def emit(self, action: str, **fields: Any) -> None:
        event = {"time": round(time.time(), 6), "technique": self.technique, "action": action,
                 "layer": "mitm", **fields}  # fmt: skip
        with self._lock, open(self.events, "a") as f:
            f.write(json.dumps(event) + "\n")

    def _flow(self, client: Any, server: Any) -> str:
        return f"tcp {_peer(client.peername)} -> {_peer(server.address)}"

    def _match(self, sni: str | None) -> str | None:
        if not self.patterns:
            return "(all names)"
        if not sni:
            return None
        name = sni.lower().rstrip(".")
        return next((p.pattern for p in self.patterns if p.search(name)), None)

    # --- mitmproxy hooks ------------------------------------------------------------------
    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        sni = data.client_hello.sni
        flow = self._flow(data.context.client, data.context.server)
        hit = self._match(sni)
        if hit is None:
            data.ignore_connection = True  # relayed as plain TCP: the real certificate
            self.emit("pass", flow=flow, sni=sni, rule=f"sni {sni!r} matches no pattern")
            return
        self.emit("intercept", flow=flow, sni=sni, rule=f"sni {sni!r} matches {hit!r}")

    def tls_failed_client(self, data: tls.TlsData) -> None:
        """The client refused the censor's certificate (or broke off the handshake)."""
        conn = data.conn
        self.emit("client-refused", flow=self._flow(conn, data.context.server),
                  sni=conn.sni, error=str(conn.error))  # fmt: skip

    def tls_established_client(self, data: tls.TlsData) -> None:
        conn = data.conn
        self.emit("client-accepted", flow=self._flow(conn, data.context.server), sni=conn.sni)

    def request(self, flow: http.HTTPFlow) -> None:
        req = flow.request
        self.emit("read-request", flow=self._flow(flow.client_conn, flow.server_conn),
                  sni=flow.client_conn.sni, method=req.method, host=req.pretty_host,
                  path=req.path, url=req.pretty_url)  # fmt: skip

    def response(self, flow: http.HTTPFlow) -> None:
        if flow.response is None:
            return
        self.emit("read-response", flow=self._flow(flow.client_conn, flow.server_conn),
                  url=flow.request.pretty_url, status=flow.response.status_code,
                  bytes=len(flow.response.raw_content or b""))  # fmt: skip


def _load() -> list[CensorMitm]:
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return []  # imported outside mitmdump (tests, linters): no addon
    with open(path) as f:
        return [CensorMitm(json.load(f))]


addons = _load()
