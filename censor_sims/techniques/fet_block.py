"""Block fully encrypted traffic: the GFW's 2021-2023 dynamic blocking of Shadowsocks,
VMess and the like (Wu et al., USENIX Security 2023, gfw-report/usenixsecurity23-artifact).

The `fet` analyzer applies the paper's exemptions to the client's first payload; a flow
none exempts is blocked with `probability` (the paper measured about 26% of matching
connections; set 0.26 to reproduce it) and its 3-tuple may stay blocked up to 180 s.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from censor_sims.techniques._verdict import BlockingTechnique


class FetBlock(BlockingTechnique):
    summary = "block flows whose first payload looks fully encrypted (GFW 2023), residual"
    type: Literal["fet_block"] = "fet_block"
    analyzers: ClassVar[tuple[str, ...]] = ("fet",)

    def decide(self, flow: Any, pkt: Any, changed: dict[str, Any], engine: Any):
        fet = changed.get("fet", {})
        if fet.get("yes"):
            return self.verdict(
                f"first payload fully encrypted: popcount {fet.get('popcount', 0):.2f}/byte, "
                f"printable {fet.get('printable_fraction', 0):.0%}, no exemption"
            )
        return None
