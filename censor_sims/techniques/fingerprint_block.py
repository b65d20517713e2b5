"""Block flows by the fingerprint of their (D)TLS ClientHello, not by name or address.

A fingerprint here is the offered version and the extension types in the order sent
(GREASE left out): the version and extension fields of JA3, which the analyzers read. It
names a library, not a service: Russia's TSPU blocked Snowflake from December 2021 by its
DTLS ClientHello (Bocovich et al., "Snowflake, a censorship circumvention system using
temporary WebRTC proxies", USENIX Security 2024), and every other WebRTC app built on the
same library (pion/dtls) sent the same ClientHello and was dropped with it (ValdikSS,
github.com/pojntfx/weron issue 5, 2022).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from censor_sims.techniques._verdict import BlockingTechnique


class HelloFingerprint(BaseModel):
    """One ClientHello fingerprint: extension types in order, optionally the version."""

    model_config = ConfigDict(extra="forbid")

    extensions: list[int] = Field(
        min_length=1, description="extension type numbers in the order sent (no GREASE)"
    )
    version: str | None = Field(default=None, description="newest version offered, e.g. DTLS1.2")

    def matches(self, props: dict[str, Any]) -> bool:
        if props.get("extensions") != self.extensions or props.get("truncated"):
            return False
        return self.version is None or props.get("version") == self.version

    def text(self) -> str:
        version = f"{self.version}, " if self.version else ""
        return f"{version}extensions {self.extensions}"


class FingerprintBlock(BlockingTechnique):
    summary = "drop, reset or throttle flows whose TLS/DTLS/QUIC ClientHello has a fingerprint"
    type: Literal["fingerprint_block"] = "fingerprint_block"
    protocol: Literal["tls", "dtls", "quic"] = Field(
        default="dtls", description="whose ClientHello: tls, dtls or quic"
    )
    fingerprints: list[HelloFingerprint] = Field(
        min_length=1, description="each: extensions (types in order), version"
    )
    action: Literal["rst", "drop", "throttle"] = Field(
        default="drop", description="drop, rst (TCP only: UDP flows are dropped) or throttle"
    )

    @property
    def analyzers(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.protocol,)

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        if "extensions" not in changed.get(self.protocol, {}):
            return None  # no new ClientHello in this packet
        props = flow.analysis.props.get(self.protocol, {})
        for fingerprint in self.fingerprints:
            if fingerprint.matches(props):
                decision = self.verdict(
                    f"{self.protocol} ClientHello fingerprint: {fingerprint.text()}"
                )
                if decision.action == "rst" and flow.info.proto == "udp":
                    return replace(decision, action="drop", residual_action="drop")
                return decision
        return None
