"""Iran's 2020 protocol filter (Bock et al., "Detecting and Evading Censorship-in-Depth: A
Case Study of Iran's Protocol Filter", FOCI 2020): on TCP ports 53, 80 and 443 only, flows
whose first two client data packets each look like DNS, HTTP or TLS pass; any other flow on
those ports is dropped and its 3-tuple stays blocked for 60 s, the timer restarting on each
new violation. No reassembly, no checksum verification, inside-to-outside flows only.
Other ports are not subject to the filter (`other_ports: pass`); `other_ports: drop` makes a
stricter whitelist that allows nothing else.
"""

from __future__ import annotations

import struct
from typing import Any, ClassVar, Literal

from pydantic import Field

from censor_sims.engine.packet import SYN, TCP
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import Technique
from harness.fields import Port

HTTP_METHODS = (b"GET", b"POST", b"HEAD", b"CONNECT", b"OPTIONS", b"DELETE", b"PUT")
# A TLS record header: change_cipher_spec, alert, handshake, application_data (RFC 8446
# 5.1), version major 3. A TLS 1.3 client's second data packet is usually its
# ChangeCipherSpec (middlebox compatibility mode, RFC 8446 D.4): taking only handshake and
# application data for TLS dropped every TLS 1.3 connection.
TLS_RECORD_TYPES = (0x14, 0x15, 0x16, 0x17)


def looks_allowed(payload: bytes) -> str | None:
    """The protocol a single data packet fingerprints as (per-packet, no reassembly)."""
    if len(payload) >= 8 and payload.startswith(HTTP_METHODS):
        return "http"
    if len(payload) >= 3 and payload[0] in TLS_RECORD_TYPES and payload[1] == 0x03:
        return "tls"
    if len(payload) >= 14:  # DNS over TCP: length prefix matching the message, qdcount >= 1
        (length,) = struct.unpack_from("!H", payload)
        qdcount = struct.unpack_from("!H", payload, 6)[0]
        if length == len(payload) - 2 and 1 <= qdcount <= 4:
            return "dns"
    return None


class ProtocolWhitelist(Technique):
    summary = "Iran 2020: TCP 53/80/443 must carry DNS/HTTP/TLS; else drop, 60 s residual"
    type: Literal["protocol_whitelist"] = "protocol_whitelist"
    needs_engine: ClassVar[bool] = True  # reads raw payloads itself, no reassembly
    ports: list[Port] = Field(
        default=[53, 80, 443], min_length=1, description="TCP ports the filter inspects"
    )
    other_ports: Literal["pass", "drop"] = Field(
        default="pass",
        description="TCP to any other port: pass (the 2020 filter left it alone) or drop",
    )
    packets: int = Field(default=2, ge=1, le=10, description="client data packets checked")
    residual: float = Field(
        default=60.0, ge=0, le=3600, description="seconds the 3-tuple is blocked"
    )

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        if pkt.proto != TCP:
            return None
        if flow.info.dst_port not in self.ports:
            if self.other_ports == "pass":
                return None  # not subject to the filter
            return self._block(f"TCP port {flow.info.dst_port} not in {self.ports}")
        if not pkt.payload or pkt.flags & SYN or pkt.src != flow.info.src_ip:
            return None
        seen = flow.data.setdefault("whitelist_checked", 0)
        if seen >= self.packets:
            return Decision("pass", f"first {self.packets} data packets fingerprinted")
        flow.data["whitelist_checked"] = seen + 1
        if looks_allowed(pkt.payload) is None:
            return self._block(f"client data packet {seen + 1} is not DNS, HTTP or TLS")
        if seen + 1 == self.packets:
            return Decision("pass", f"first {self.packets} data packets fingerprinted")
        return None

    def wants_more(self, flow: Any) -> bool:
        inspected = flow.info.dst_port in self.ports or self.other_ports == "drop"
        return (
            flow.info.proto == "tcp"
            and inspected
            and flow.data.get("whitelist_checked", 0) < self.packets
        )

    def _block(self, rule: str) -> Decision:
        return Decision("drop", rule, residual_s=self.residual, residual_action="drop",
                        restart_timer=True)  # fmt: skip
