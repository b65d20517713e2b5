"""The Psiphon-like tool's other carriers: TLS-OSSH (OSSH inside TLS, server on `proxy`:443)
and meek (OSSH in HTTP POST bodies, fronted through `front`). Both keep the base tool's client
side: a local SOCKS5 server, TCP over direct-tcpip, UDP over UDPGW."""

from __future__ import annotations

import secrets
from typing import ClassVar

from pydantic import Field

from harness.pki import CA, make_ca
from harness.tools.base import Tool
from harness.tools.options import PaddingRange, ServerName
from harness.tools.psiphon_like.tool import padding_args
from harness.topology.base import fqdn
from harness.trial import Endpoint, TrialContext

TLS_PORT = 443
MEEK_ORIGIN_PORT = 8080  # the meek server's plain HTTP port on `proxy`, reached by the front
FRONT_PORT = 443
READY_TIMEOUT = 25.0


def trial_ca(ctx: TrialContext) -> CA:
    """The run's CA; a bare context (in a test) gets one of its own in the trial dir."""
    return ctx.ca if ctx.ca is not None else make_ca(ctx.dir / "pki")


def _secrets() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(16)  # hex: never read as an option


class PsiphonLikeTlsOptions(PaddingRange):
    sni: ServerName = Field(
        default=fqdn("front"),
        description="the name the ClientHello carries (the server's leaf is issued for it; "
        "the client dials the proxy's address whatever the name)",
    )


class PsiphonLikeMeekOptions(PaddingRange):
    front_domain: ServerName = Field(
        default=fqdn("front"), description="the front's name: the TLS SNI the censor sees"
    )
    host: ServerName = Field(
        default=fqdn("proxy"),
        description="HTTP Host inside TLS: the name the front routes to the meek server",
    )


class PsiphonLikeTls(Tool):
    """TLS-OSSH. The `sni` option is the name the ClientHello carries and the server's leaf
    is issued for; any name works, since the client dials the proxy's address."""

    name = "psiphon-like-tls"
    udp = "udpgw"
    protocols: ClassVar[list[str]] = ["OSSH inside TLS (TLS-OSSH)", "UDPGW"]
    version_command: ClassVar[list[str] | None] = None
    local: ClassVar[str] = "127.0.0.1:1082"
    Options = PsiphonLikeTlsOptions
    options: PsiphonLikeTlsOptions

    def start(self, ctx: TrialContext) -> Endpoint:
        keyword, password = _secrets()
        ca = trial_ca(ctx)
        proxy_ip = ctx.topology.addr("proxy")
        sni = self.options.sni
        cert, key = ca.issue("tls-ossh", [sni], [proxy_ip], ctx.dir / self.name)
        server_addr = f"{proxy_ip}:{TLS_PORT}"
        module = "harness.tools.psiphon_like.tls_ossh"
        common = ("--keyword", keyword, "--password", password)
        server = ctx.supervisor.start(
            ctx.topology["proxy"],
            "tls-ossh-server",
            ctx.agent(module, "server", "--listen", server_addr, "--cert", str(cert),
                      "--key", str(key), *common),
        )  # fmt: skip
        server.wait_for_event("listening", 10)
        client = ctx.supervisor.start(
            ctx.topology["client"],
            "tls-ossh-client",
            ctx.agent(module, "client", "--server", server_addr, "--sni", sni,
                      "--ca", str(ca.cert_path), "--socks", self.local, *common,
                      *padding_args(self.options)),
        )  # fmt: skip
        socks = client.wait_for_event("ready", READY_TIMEOUT)["socks"]
        self.probe(ctx, socks, timeout=5)
        return Endpoint(socks=socks, udp=True)


class PsiphonLikeMeek(Tool):
    """Meek, domain-fronted: the client talks only to `front` (SNI = the front domain), whose
    HTTPS reverse proxy routes Host = `backend` to the meek server on `proxy`."""

    name = "psiphon-like-meek"
    udp = "udpgw"
    protocols: ClassVar[list[str]] = ["OSSH in HTTP POST bodies (meek), domain-fronted", "UDPGW"]
    version_command: ClassVar[list[str] | None] = None
    local: ClassVar[str] = "127.0.0.1:1083"
    Options = PsiphonLikeMeekOptions
    options: PsiphonLikeMeekOptions

    def start(self, ctx: TrialContext) -> Endpoint:
        front_name, backend = self.options.front_domain, self.options.host
        keyword, password = _secrets()
        ca = trial_ca(ctx)
        front_ip, proxy_ip = ctx.topology.addr("front"), ctx.topology.addr("proxy")
        origin = f"{proxy_ip}:{MEEK_ORIGIN_PORT}"
        common = ("--keyword", keyword, "--password", password)
        server = ctx.supervisor.start(
            ctx.topology["proxy"],
            "meek-server",
            ctx.agent("harness.tools.psiphon_like.meek_server", "--listen", origin, *common),
        )
        cert, key = ca.issue("front", [front_name], [front_ip], ctx.dir / self.name)
        front = ctx.supervisor.start(
            ctx.topology["front"],
            "meek-front",
            ctx.agent("harness.tools.psiphon_like.front", "--listen", f"{front_ip}:{FRONT_PORT}",
                      "--cert", str(cert), "--key", str(key),
                      "--route", f"{backend}={origin}"),
        )  # fmt: skip
        server.wait_for_event("listening", 10)
        front.wait_for_event("listening", 10)
        client = ctx.supervisor.start(
            ctx.topology["client"],
            "meek-client",
            ctx.agent("harness.tools.psiphon_like.meek_client",
                      "--front", f"{front_ip}:{FRONT_PORT}", "--sni", front_name,
                      "--host", backend, "--ca", str(ca.cert_path),
                      "--socks", self.local, *common, *padding_args(self.options)),
        )  # fmt: skip
        socks = client.wait_for_event("ready", READY_TIMEOUT)["socks"]
        self.probe(ctx, socks, timeout=5)
        return Endpoint(socks=socks, udp=True)
