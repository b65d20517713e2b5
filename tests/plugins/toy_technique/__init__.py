"""`toy_payload_drop`: a censor technique in one package. It drops every UDP flow whose
first datagram carries `marker`: decided in the censor's DPI engine, which imports this
module by the name the censor hands it."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from censor_sims.engine.packet import UDP
from censor_sims.engine.verdicts import Decision
from censor_sims.technique import Technique


class ToyPayloadDrop(Technique):
    summary = "toy: drop UDP flows whose payload carries a marker"
    type: Literal["toy_payload_drop"] = "toy_payload_drop"
    marker: str = Field(min_length=1, max_length=64, description="bytes that condemn a flow")
    needs_engine = True

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any) -> Any:
        if pkt.proto == UDP and self.marker.encode() in pkt.payload:
            return Decision("drop", f"{self.label}: payload carries {self.marker!r}")
        return None
