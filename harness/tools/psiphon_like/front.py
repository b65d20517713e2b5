"""The fronting CDN edge on `front`: an HTTPS reverse proxy that terminates TLS for the front
domain and routes each request by its Host header to a backend (origin) over plain HTTP.

That is what makes domain fronting work: a censor on the client's path sees a TLS connection
to the front's address with SNI = the front domain; the real destination is named only in
the encrypted Host header. Unknown hosts get 421 (a CDN refuses names it does not serve).
Each request carries X-Forwarded-For with the client's address, as CDNs add it.

    python -m harness.tools.psiphon_like.front --listen IP:443 --cert C --key K \\
        --route meek.example=10.0.0.12:8080
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ssl

from harness.agent_io import emit
from harness.tools.psiphon_like import http11

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"}
BACKEND_TIMEOUT = 30.0


def log(event: str, **fields: object) -> None:
    emit({"event": event, **fields})


class Front:
    def __init__(self, routes: dict[str, tuple[str, int]], cert: str, key: str) -> None:
        self.routes = {name.lower(): addr for name, addr in routes.items()}
        self._sni: dict[int, str | None] = {}
        self.ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ssl.load_cert_chain(cert, key)
        self.ssl.set_alpn_protocols(["http/1.1"])
        self.ssl.sni_callback = self._remember_sni

    def _remember_sni(self, obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self._sni[id(obj)] = name

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        sni = self._sni.pop(id(writer.get_extra_info("ssl_object")), None)
        backends: dict[str, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}
        try:
            while (msg := await http11.read_message(reader)) is not None:
                writer.write(await self._forward(msg, peer, sni, backends))
                await writer.drain()
        except http11.HttpError as exc:
            writer.write(http11.response(exc.status, [], b""))
        except (OSError, asyncio.IncompleteReadError):
            pass  # ssl.SSLError is an OSError
        finally:
            for _, b_writer in backends.values():
                b_writer.close()
            writer.close()

    async def _forward(self, msg: http11.Message, peer: str, sni: str | None, backends) -> bytes:
        host = (msg.get("host") or "").rsplit(":", 1)[0].lower()
        route = self.routes.get(host)
        if route is None:
            log("misdirected", peer=peer, sni=sni, host=host)
            return http11.response(421, [], b"")
        headers = [(k, v) for k, v in msg.headers if k.lower() not in HOP_BY_HOP]
        headers.append(("X-Forwarded-For", peer))
        upstream = http11.Message(msg.start, headers, msg.body).encode()
        for attempt in range(2):  # a kept-alive origin connection may have gone stale
            try:
                if host not in backends:
                    backends[host] = await asyncio.open_connection(*route)
                    log("route", peer=peer, sni=sni, host=host, backend=f"{route[0]}:{route[1]}")
                b_reader, b_writer = backends[host]
                b_writer.write(upstream)
                await b_writer.drain()
                answer = await asyncio.wait_for(http11.read_message(b_reader), BACKEND_TIMEOUT)
                if answer is None:
                    raise ConnectionError("origin closed the connection")
                return answer.encode()
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                if host in backends:
                    backends.pop(host)[1].close()
                if attempt:
                    log("bad-gateway", host=host, error=str(exc))
        return http11.response(502, [], b"")


def _route(text: str) -> tuple[str, tuple[str, int]]:
    name, sep, addr = text.partition("=")
    host, _, port = addr.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"route {text!r} is not NAME=IP:PORT")
    return name, (host.strip("[]"), int(port))


async def serve(listen: str, front: Front) -> None:
    host, _, port = listen.rpartition(":")
    server = await asyncio.start_server(
        front.handle, host.strip("[]"), int(port), ssl=front.ssl, ssl_handshake_timeout=10
    )
    log("listening", listen=listen, routes=sorted(front.routes))
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", required=True, help="IP:PORT for HTTPS")
    parser.add_argument("--cert", required=True, help="certificate of the front domain")
    parser.add_argument("--key", required=True)
    parser.add_argument("--route", type=_route, action="append", required=True,
                        help="NAME=IP:PORT: requests with Host NAME go to that origin")  # fmt: skip
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.listen, Front(dict(args.route), args.cert, args.key)))


if __name__ == "__main__":
    main()
