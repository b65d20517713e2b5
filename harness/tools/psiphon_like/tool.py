"""The Psiphon-like tool: OSSH server on `proxy`, OSSH client with a local SOCKS5 server
(TCP via direct-tcpip, UDP via UDPGW) on `client`. Both are our own Python agents."""

from __future__ import annotations

import secrets

from harness.tools.base import Tool
from harness.trial import Endpoint, TrialContext

PORT = 9922
LOCAL = "127.0.0.1:1081"


class PsiphonLike(Tool):
    name = "psiphon-like"
    udp = "udpgw"

    def start(self, ctx: TrialContext) -> Endpoint:
        keyword = secrets.token_hex(16)  # hex: a value starting with "-" reads as an option
        password = secrets.token_hex(16)
        server_addr = f"{ctx.topology.addr('proxy')}:{PORT}"
        server = ctx.supervisor.start(
            ctx.topology["proxy"],
            "ossh-server",
            ctx.agent(
                "harness.tools.psiphon_like.server",
                *("--listen", server_addr, "--keyword", keyword, "--password", password),
            ),
        )
        server.wait_for_event("listening", 10)
        client = ctx.supervisor.start(
            ctx.topology["client"],
            "ossh-client",
            ctx.agent(
                "harness.tools.psiphon_like.client",
                *("--server", server_addr, "--keyword", keyword, "--password", password),
                *("--socks", LOCAL),
            ),
        )
        socks = client.wait_for_event("ready", 25)["socks"]
        self.probe(ctx, socks, timeout=5)
        return Endpoint(socks=socks, udp=True)
