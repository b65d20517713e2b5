"""The Psiphon-like tool: OSSH server on `proxy`, OSSH client with a local SOCKS5 server
(TCP via direct-tcpip, UDP via UDPGW) on `client`. Both are our own Python agents."""

from __future__ import annotations

import secrets

from pydantic import Field

from harness.fields import Port
from harness.tools.base import Tool
from harness.tools.options import PaddingRange
from harness.trial import Endpoint, TrialContext

PORT = 9922
LOCAL = "127.0.0.1:1081"


class PsiphonLikeOptions(PaddingRange):
    port: Port = Field(default=PORT, description="the OSSH server's TCP port")


def padding_args(options: PaddingRange) -> list[str]:
    """The OSSH client's flags for the seed message's padding range."""
    return ["--padding-min", str(options.padding_min), "--padding-max", str(options.padding_max)]


class PsiphonLike(Tool):
    name = "psiphon-like"
    udp = "udpgw"
    protocols = ["OSSH (obfuscated SSH)", "UDPGW"]
    Options = PsiphonLikeOptions
    options: PsiphonLikeOptions

    def start(self, ctx: TrialContext) -> Endpoint:
        keyword = secrets.token_hex(16)  # hex: a value starting with "-" reads as an option
        password = secrets.token_hex(16)
        server_addr = f"{ctx.topology.addr('proxy')}:{self.options.port}"
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
                *padding_args(self.options),
            ),
        )
        socks = client.wait_for_event("ready", 25)["socks"]
        self.probe(ctx, socks, timeout=5)
        return Endpoint(socks=socks, udp=True)
