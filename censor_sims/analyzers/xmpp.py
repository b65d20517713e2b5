"""XMPP (RFC 6120): the opening stream header and the STARTTLS exchange, in clear text.

The client opens with `<stream:stream to='domain' ...>` (§4.7.2): `to` names the service
(the XMPP analogue of an SNI). STARTTLS (§5.4.2) is offered in the server's features,
requested by the client's `<starttls/>` and granted by `<proceed/>`; after that the stream is
TLS and nothing more can be read here.
"""

from __future__ import annotations

import re
from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

STREAM_OPEN = re.compile(rb"<(?:[A-Za-z0-9_-]+:)?stream\b([^>]*)>")
ATTRIBUTE = re.compile(rb"""\b([A-Za-z:_-]+)\s*=\s*(?:'([^']*)'|"([^"]*)")""")
TLS_NS = rb"urn:ietf:params:xml:ns:xmpp-tls"
STARTTLS = re.compile(rb"<starttls\b[^>]*" + TLS_NS)
PROCEED = re.compile(rb"<proceed\b[^>]*" + TLS_NS)
FAILURE = re.compile(rb"<failure\b[^>]*" + TLS_NS)


def stream_attributes(header: bytes) -> dict[str, str]:
    return {
        m.group(1).decode("latin-1"): (m.group(2) if m.group(2) is not None else m.group(3)).decode(
            "utf-8", "replace"
        )
        for m in ATTRIBUTE.finditer(header)
    }


class XmppStream(Stream):
    __slots__ = ("bufs", "found")

    def __init__(self) -> None:
        self.bufs = [b"", b""]
        self.found: set[str] = set()

    def feed(self, rev: bool, data: bytes) -> Update:
        side = 1 if rev else 0
        buf = self.bufs[side] + data
        self.bufs[side] = buf
        if side == 0 and "client_open" not in self.found:
            start = buf.lstrip(b"\xef\xbb\xbf \t\r\n")
            if start and not start.startswith(b"<"):
                return None, True  # not XML: not XMPP
        props: dict[str, Any] = {}
        if side == 0:
            self._client(buf, props)
        else:
            self._server(buf, props)
        return props or None, "proceed" in self.found or "failure" in self.found

    def _client(self, buf: bytes, props: dict[str, Any]) -> None:
        if "client_open" not in self.found:
            m = STREAM_OPEN.search(buf)
            if m is None:
                return
            self.found.add("client_open")
            attrs = stream_attributes(m.group(1))
            props.update(yes=True, to=attrs.get("to"), ns=attrs.get("xmlns"))
            if "version" in attrs:
                props["version"] = attrs["version"]
        if "starttls" not in self.found and STARTTLS.search(buf):
            self.found.add("starttls")
            props["starttls"] = True

    def _server(self, buf: bytes, props: dict[str, Any]) -> None:
        if "server_open" not in self.found:
            m = STREAM_OPEN.search(buf)
            if m is None:
                return
            self.found.add("server_open")
            props["server_from"] = stream_attributes(m.group(1)).get("from")
        if "offered" not in self.found and STARTTLS.search(buf):
            self.found.add("offered")
            props["starttls_offered"] = True
        if "proceed" not in self.found and PROCEED.search(buf):
            self.found.add("proceed")
            props["proceed"] = True
        elif "failure" not in self.found and FAILURE.search(buf):
            self.found.add("failure")
            props["starttls_failure"] = True


class XmppAnalyzer(Analyzer):
    """`xmpp.*`: yes, to (the domain the client asks for), ns (jabber:client or
    jabber:server), version, starttls (client asked); from the server: server_from,
    starttls_offered, proceed, starttls_failure."""

    name = "xmpp"
    limit = 8192

    def new_tcp(self, info: FlowInfo) -> Stream:
        return XmppStream()
