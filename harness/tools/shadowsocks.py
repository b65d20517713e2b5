"""shadowsocks-libev: ss-server on `proxy`, ss-local (SOCKS5 with UDP relay) on `client`."""

from __future__ import annotations

import secrets

from harness.tools.base import Tool
from harness.trial import Endpoint, TrialContext

PORT = 8388
LOCAL = "127.0.0.1:1080"
CIPHER = "chacha20-ietf-poly1305"


class Shadowsocks(Tool):
    name = "shadowsocks"
    udp = "native"
    binaries = {"ss-server": "shadowsocks-libev", "ss-local": "shadowsocks-libev"}

    def start(self, ctx: TrialContext) -> Endpoint:
        self.check_installed()
        password = secrets.token_hex(16)
        server_ip = ctx.topology.addr("proxy")
        common = ["-k", password, "-m", CIPHER, "-u", "-v"]
        server = ctx.supervisor.start(
            ctx.topology["proxy"],
            "ss-server",
            ["ss-server", "-s", server_ip, "-p", str(PORT), *common],
        )
        host, port = LOCAL.split(":")
        local = ctx.supervisor.start(
            ctx.topology["client"],
            "ss-local",
            ["ss-local", "-s", server_ip, "-p", str(PORT), "-b", host, "-l", port, *common],
        )
        server.wait_for_line(r"listening", 5)
        local.wait_for_line(r"listening", 5)
        self.probe(ctx, LOCAL, timeout=5)
        return Endpoint(socks=LOCAL, udp=True)
