"""DNS over UDP and over TCP (2-byte length framing, RFC 1035 §4.2.2): question and answers.

Names are published as they are on the wire (no lower-casing: 0x20 case randomisation and
case-sensitive censors are both real; rules decide how to compare). Compression pointers
(RFC 1035 §4.1.4) are followed with a hop limit, so a pointer loop is just malformed input.
"""

from __future__ import annotations

import socket
from typing import Any

from censor_sims.analyzers._reader import Reader, Truncated
from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

QTYPES = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    35: "NAPTR",
    41: "OPT",
    64: "SVCB",
    65: "HTTPS",
    255: "ANY",
}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
MAX_POINTERS = 32
MAX_NAME = 255


def read_name(msg: bytes, pos: int) -> tuple[str, int]:
    """A domain name at pos (following compression pointers); (name, position after it)."""
    labels: list[str] = []
    after: int | None = None
    hops = 0
    length = 0
    while True:
        if pos >= len(msg):
            raise Truncated("name runs off the message")
        n = msg[pos]
        if n == 0:
            pos += 1
            break
        if n & 0xC0 == 0xC0:
            if pos + 1 >= len(msg):
                raise Truncated("cut pointer")
            if after is None:
                after = pos + 2
            hops += 1
            if hops > MAX_POINTERS:
                raise Truncated("compression pointer loop")
            pos = ((n & 0x3F) << 8) | msg[pos + 1]
            continue
        if n & 0xC0:
            raise Truncated("reserved label type")
        label = msg[pos + 1 : pos + 1 + n]
        if len(label) < n:
            raise Truncated("cut label")
        length += n + 1
        if length > MAX_NAME:
            raise Truncated("name longer than 255 octets")
        labels.append(label.decode("latin-1"))
        pos += 1 + n
    return ".".join(labels) or ".", after if after is not None else pos


def type_name(code: int) -> str:
    return QTYPES.get(code, f"TYPE{code}")  # RFC 3597 §5 notation for unknown types


def parse_message(msg: bytes) -> dict[str, Any] | None:
    """Header, first question and (for responses) A/AAAA/CNAME answers; None if malformed."""
    if len(msg) < 12:
        return None
    r = Reader(msg)
    ident, flags, qdcount, ancount = r.u16(), r.u16(), r.u16(), r.u16()
    r.skip(4)  # nscount, arcount
    opcode = (flags >> 11) & 0x0F
    if qdcount == 0 or qdcount > 16 or opcode > 6:
        return None
    is_response = bool(flags & 0x8000)
    try:
        qname, pos = read_name(msg, 12)
        r.pos = pos
        qtype = r.u16()
        r.u16()  # qclass
        for _ in range(qdcount - 1):
            _, r.pos = read_name(msg, r.pos)
            r.skip(4)
    except Truncated:
        return None
    props: dict[str, Any] = {
        "id": ident,
        "is_response": is_response,
        "opcode": opcode,
        "qname": qname,
        "qtype": type_name(qtype),
    }
    if is_response:
        props["rcode"] = RCODES.get(flags & 0x0F, f"RCODE{flags & 0x0F}")
        props.update(_answers(msg, r, ancount))
    return props


def _answers(msg: bytes, r: Reader, count: int) -> dict[str, list[str]]:
    a: list[str] = []
    aaaa: list[str] = []
    cnames: list[str] = []
    try:
        for _ in range(min(count, 256)):
            _, r.pos = read_name(msg, r.pos)
            rtype = r.u16()
            r.skip(6)  # class, ttl
            rdlength = r.u16()
            rdata_at = r.pos
            rdata = r.take(rdlength)
            if rtype == 1 and rdlength == 4:
                a.append(socket.inet_ntop(socket.AF_INET, rdata))
            elif rtype == 28 and rdlength == 16:
                aaaa.append(socket.inet_ntop(socket.AF_INET6, rdata))
            elif rtype == 5:
                cnames.append(read_name(msg, rdata_at)[0])
    except Truncated:
        pass  # keep the answers before the damage
    return {"answers": a, "aaaa": aaaa, "cnames": cnames}


class DnsStream(Stream):
    __slots__ = ("bufs", "tcp")

    def __init__(self, tcp: bool) -> None:
        self.tcp = tcp
        self.bufs = [b"", b""]

    def feed(self, rev: bool, data: bytes) -> Update:
        if not self.tcp:
            return self._message(data)
        side = 1 if rev else 0
        buf = self.bufs[side] + data
        props: dict[str, Any] = {}
        done = False
        while len(buf) >= 2:
            length = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + length:
                break
            update, done = self._message(buf[2 : 2 + length])
            buf = buf[2 + length :]
            if update:
                props.update(update)
            if done:
                break
        self.bufs[side] = buf
        return props or None, done

    @staticmethod
    def _message(msg: bytes) -> Update:
        props = parse_message(msg)
        if props is None:
            return None, True  # not DNS: nothing more to learn from this flow
        # Not done after a response: a resolver sends later queries from the same port
        # (and RFC 7766 pipelines them on one TCP connection); the byte limit bounds it.
        return props, False


class DnsAnalyzer(Analyzer):
    """`dns.*`: id, is_response, opcode, qname, qtype (name, e.g. "A"), rcode (name, e.g.
    "NXDOMAIN"), answers (A addresses), aaaa, cnames. Reads every message of the flow up to
    its byte limit, not only the first exchange; each message's fields overwrite the last's."""

    name = "dns"
    limit = 8192

    def new_udp(self, info: FlowInfo) -> Stream:
        return DnsStream(tcp=False)

    def new_tcp(self, info: FlowInfo) -> Stream:
        return DnsStream(tcp=True)
