"""Block plain HTTP by Host header or by keyword, the oldest DPI censorship there is.

Every censorship emulator has it, mostly as a byte match on the Host header or the URL.
Actions: `rst` (RST to both ends, GFW), `drop`, or `block_page`: the censor answers the
request itself with an HTTP response (403 and a body, as Iran's and Turkey's block pages
do) spoofed from the server, with FIN so the client takes it as the whole answer, and RSTs
the server so it forgets the connection; the request never reaches it.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from censor_sims.analyzers.http import METHODS
from censor_sims.engine.packet import ACK, FIN, PSH, RST, TCP, build_tcp
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import Technique
from censor_sims.techniques._names import MatchMode, check_regexes, name_matches

HEAD_LIMIT = 8192  # client bytes searched for keywords (the analyzer's own limit)


class HttpFilter(Technique):
    summary = "reset, drop or answer with a block page HTTP requests by Host or keyword"
    type: Literal["http_filter"] = "http_filter"
    analyzers: ClassVar[tuple[str, ...]] = ("http",)
    names: list[str] = Field(default=[], description="Host header values to match")
    match: MatchMode = Field(default="suffix", description="exact, suffix or regex (names)")
    keywords: list[str] = Field(
        default=[], description="byte strings searched in the parts named by keyword_in"
    )
    keyword_in: list[Literal["path", "host", "headers", "body"]] = Field(
        default=["path", "host", "headers", "body"],
        description="where keywords count: request path, Host header, other headers, body "
        "(GFW, Rambert et al. WWW 2021: path and host only)",
        min_length=1,
    )
    action: Literal["rst", "drop", "block_page"] = Field(
        default="rst", description="rst (RSTs to both ends), drop, or block_page"
    )
    rst_count: int = Field(default=1, ge=1, le=10, description="RST pairs injected (rst)")
    status: int = Field(default=403, ge=100, le=599, description="block page status code")
    body: str = Field(
        default="<html><body><h1>Access denied</h1>This site is blocked.</body></html>",
        description="block page body (HTML)",
    )
    residual: float = Field(
        default=0.0, ge=0, le=3600, description="seconds the 3-tuple stays blocked afterwards"
    )
    residual_share: float = Field(
        default=1.0, ge=0, le=1,
        description="share of later connections the residual blocks (GFW: 0.5-0.75)",
    )  # fmt: skip

    @model_validator(mode="after")
    def _something_to_match(self) -> HttpFilter:
        if not self.names and not self.keywords:
            raise ValueError("http_filter needs names (Host) or keywords, or both")
        check_regexes(self.names, self.match)
        return self

    def wants_more(self, flow: Any) -> bool:
        return not flow.data.get("http_head_done", False)

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        if pkt.proto != TCP or not pkt.payload or pkt.src != flow.info.src_ip:
            return None
        head = flow.data.get("http_head", b"") + pkt.payload
        flow.data["http_head"] = head = head[:HEAD_LIMIT]
        done = b"\r\n\r\n" in head or b"\n\n" in head or len(head) >= HEAD_LIMIT
        flow.data["http_head_done"] = done
        http = flow.analysis.props.get("http", {})
        if "method" not in http:  # no request line yet, or not HTTP at all
            flow.data["http_head_done"] = done or not _may_be_request(head)
            return None
        rule = self._rule(http.get("host"), head)
        if rule is None:
            return None
        if self.action == "block_page":
            for raw in self.block_page(pkt):
                engine.send(raw)
        return Decision(self.action, rule, residual_s=self.residual,
                        residual_action="rst" if self.action == "rst" else "drop",
                        residual_share=self.residual_share, repeat=self.rst_count)  # fmt: skip

    def _rule(self, host: str | None, head: bytes) -> str | None:
        if self.names and host:
            hit = name_matches(host.split(":")[0], self.names, self.match)
            if hit is not None:
                return f"http host {host!r} matches {hit!r} ({self.match})"
        searched = {part: text.lower() for part, text in request_parts(head).items()
                    if part in self.keyword_in}  # fmt: skip
        for keyword in self.keywords:
            needle = keyword.lower().encode("latin-1", "replace")
            for part, text in searched.items():
                if needle in text:
                    return f"http request contains keyword {keyword!r} (in the {part})"
        return None

    def block_page(self, pkt: Any) -> list[bytes]:
        """The censor's answer to the request in `pkt` (client -> server, dropped): the
        response to the client as if from the server, then a RST to the server as if from
        the client, carrying the sequence number the server still expects."""
        body = self.body.encode()
        response = (
            f"HTTP/1.1 {self.status} Blocked\r\nContent-Type: text/html\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        after_request = (pkt.seq + len(pkt.payload)) % 2**32
        to_client = build_tcp(pkt.dst, pkt.src, pkt.dport, pkt.sport, pkt.ack, after_request,
                              PSH | ACK | FIN, window=8192, payload=response)  # fmt: skip
        to_server = build_tcp(pkt.src, pkt.dst, pkt.sport, pkt.dport, pkt.seq, 0, RST)
        return [to_client, to_server]


def request_parts(head: bytes) -> dict[str, bytes]:
    """The request's path (request-target), Host header value, other header lines and the
    body bytes sent with the head."""
    sep = b"\r\n\r\n" if b"\r\n\r\n" in head else b"\n\n"
    top, _, body = head.partition(sep)
    line, *fields = top.splitlines()
    words = line.split()
    host = [f.split(b":", 1)[1].strip() for f in fields if f.lower().startswith(b"host:")]
    others = [f for f in fields if not f.lower().startswith(b"host:")]
    return {
        "path": words[1] if len(words) > 1 else b"",
        "host": b"\n".join(host),
        "headers": b"\n".join(others),
        "body": body,
    }


def _may_be_request(head: bytes) -> bool:
    return any(head.startswith(m) or m.startswith(head) for m in METHODS)
