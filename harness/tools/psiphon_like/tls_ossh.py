"""TLS-OSSH: the OSSH byte stream inside TLS with a chosen SNI (Psiphon's TLS-OSSH tunnel
protocol). A censor then sees a TLS ClientHello for an innocuous name, not the random-looking
first payload of plain OSSH that fully-encrypted-traffic detection flags.

The server terminates TLS with a leaf from the run's CA for the SNI name and runs the plain
OSSH server (server.OsshServer) on the decrypted stream; the client verifies that leaf against
the run's CA. Psiphon's client does not verify (the SSH host key is its trust anchor) and its
server passes non-clients through to a real web server; neither is modelled here.

    python -m harness.tools.psiphon_like.tls_ossh server --listen IP:443 --cert C --key K ...
    python -m harness.tools.psiphon_like.tls_ossh client --server IP:443 --sni NAME --ca CA ...
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl
import sys

from harness.tools.psiphon_like import client
from harness.tools.psiphon_like.server import OsshServer, log


def server_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2", "http/1.1"])  # what a web server offers
    return ctx


def client_context(ca: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    return ctx


def tls_dialer(server: str, sni: str, ca: str) -> client.Dialer:
    host, _, port = server.rpartition(":")
    ctx = client_context(ca)
    return lambda: asyncio.open_connection(
        host.strip("[]"), int(port), ssl=ctx, server_hostname=sni
    )


async def serve(listen: str, cert: str, key: str, keyword: str, password: str) -> None:
    host, _, port = listen.rpartition(":")
    ossh = OsshServer(keyword, password)
    tls = await asyncio.start_server(
        ossh.handle, host.strip("[]"), int(port), ssl=server_context(cert, key),
        ssl_handshake_timeout=10,
    )  # fmt: skip
    log("listening", listen=listen, tls=True)
    async with tls:
        await tls.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="side", required=True)
    srv = sub.add_parser("server", help="TLS-OSSH server (on proxy)")
    srv.add_argument("--listen", required=True, help="IP:PORT")
    srv.add_argument("--cert", required=True)
    srv.add_argument("--key", required=True)
    cli = sub.add_parser("client", help="TLS-OSSH client with a local SOCKS5 server")
    cli.add_argument("--server", required=True, help="IP:PORT of the TLS-OSSH server")
    cli.add_argument("--sni", required=True, help="server name in the ClientHello")
    cli.add_argument("--ca", required=True, help="CA certificate to verify the server with")
    cli.add_argument("--socks", default="127.0.0.1:1082", help="local SOCKS5 listen address")
    client.add_padding_args(cli)
    for p in (srv, cli):
        p.add_argument("--keyword", required=True, help="OSSH obfuscation keyword")
        p.add_argument("--password", required=True, help="SSH password")
    args = parser.parse_args()
    if not args.keyword:
        sys.exit("missing keyword")
    with contextlib.suppress(KeyboardInterrupt):
        if args.side == "server":
            asyncio.run(serve(args.listen, args.cert, args.key, args.keyword, args.password))
        else:
            dial = tls_dialer(args.server, args.sni, args.ca)
            padding = (args.padding_min, args.padding_max)
            asyncio.run(client.run(dial, args.keyword, args.password, args.socks, padding))


if __name__ == "__main__":
    main()
