"""shadowsocks-libev: ss-server on `proxy`, ss-local (SOCKS5 with UDP relay) on `client`."""

from __future__ import annotations

import secrets
from typing import ClassVar, Literal

from pydantic import Field

from harness.fields import Port
from harness.tools.base import Tool
from harness.tools.options import ToolOptions
from harness.trial import Endpoint, TrialContext

PORT = 8388
LOCAL = "127.0.0.1:1080"
CIPHER = "chacha20-ietf-poly1305"
# What ss-libev 3.3.5's -m takes (`ss-server -h`).
Cipher = Literal[
    "rc4-md5", "aes-128-gcm", "aes-192-gcm", "aes-256-gcm", "aes-128-cfb", "aes-192-cfb",
    "aes-256-cfb", "aes-128-ctr", "aes-192-ctr", "aes-256-ctr", "camellia-128-cfb",
    "camellia-192-cfb", "camellia-256-cfb", "bf-cfb", "chacha20-ietf-poly1305",
    "xchacha20-ietf-poly1305", "salsa20", "chacha20", "chacha20-ietf",
]  # fmt: skip


class ShadowsocksOptions(ToolOptions):
    cipher: Cipher = Field(default=CIPHER, description="encryption method (ss-libev's -m)")
    port: Port = Field(default=PORT, description="the server's TCP and UDP port")


class Shadowsocks(Tool):
    name = "shadowsocks"
    udp = "native"
    protocols = ["shadowsocks AEAD chacha20-ietf-poly1305"]
    binaries = {"ss-server": "shadowsocks-libev", "ss-local": "shadowsocks-libev"}
    Options = ShadowsocksOptions
    programs: ClassVar[tuple[str, ...]] = ("ss-server", "ss-local")
    options: ShadowsocksOptions

    def argv(self, server_ip: str, password: str) -> tuple[list[str], list[str]]:
        """(ss-server, ss-local) command lines."""
        port = str(self.options.port)
        common = ["-k", password, "-m", self.options.cipher, "-u", "-v"]
        host, local_port = LOCAL.split(":")
        server = [self.program("ss-server"), "-s", server_ip, "-p", port, *common]
        local = [self.program("ss-local"), "-s", server_ip, "-p", port, "-b", host,
                 "-l", local_port, *common]  # fmt: skip
        return server, local

    def start(self, ctx: TrialContext) -> Endpoint:
        self.check_installed()
        server_argv, local_argv = self.argv(ctx.topology.addr("proxy"), secrets.token_hex(16))
        server = ctx.supervisor.start(ctx.topology["proxy"], "ss-server", server_argv)
        local = ctx.supervisor.start(ctx.topology["client"], "ss-local", local_argv)
        server.wait_for_line(r"listening", 5)
        local.wait_for_line(r"listening", 5)
        self.probe(ctx, LOCAL, timeout=5)
        return Endpoint(socks=LOCAL, udp=True)
