"""A small HTTPS server for the bystander workloads, run on an outside host:
`python -m harness.apps.https_site --addr IP --cert C --key K [--root DIR] [--blob PATH:BYTES]`.

It serves the files under --root (a web site's resources) and, with --blob, a generated
file of BYTES random bytes at PATH and its SHA-256 (hex) at PATH.sha256, as an update server
publishes it. The blob is held in memory so a trial leaves no tens of MB on disk. HTTP/1.1
with keep-alive over real TLS (a leaf from the run CA), so a client's connections, SNI and
throughput are what a censor sees of a real site. Prints {"event": "ready"} once listening.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import ssl
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.agent_io import emit

CHUNK = 256 * 1024


class SiteHandler(SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as browsers and curl use it
    timeout = 30  # seconds a stalled connection may hold its thread
    blobs: dict[str, bytes] = {}

    def do_GET(self) -> None:
        body = self.blobs.get(self.path)
        if body is None:
            super().do_GET()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        view = memoryview(body)
        for start in range(0, len(body), CHUNK):
            self.wfile.write(view[start : start + CHUNK])

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _blobs(spec: str | None) -> dict[str, bytes]:
    """PATH:BYTES -> {PATH: random bytes, PATH.sha256: their digest}."""
    if not spec:
        return {}
    path, _, size = spec.rpartition(":")
    body = os.urandom(int(size))
    digest = hashlib.sha256(body).hexdigest()
    return {path: body, f"{path}.sha256": f"{digest}  {path.rsplit('/', 1)[-1]}\n".encode()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.apps.https_site")
    parser.add_argument("--addr", required=True)
    parser.add_argument("--port", type=int, default=443)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--root", default=os.devnull, help="directory of files to serve")
    parser.add_argument("--blob", help="PATH:BYTES, a generated file and its PATH.sha256")
    args = parser.parse_args(argv)
    SiteHandler.blobs = _blobs(args.blob)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(args.cert, args.key)
    handler = partial(SiteHandler, directory=args.root)
    server = ThreadingHTTPServer((args.addr, args.port), handler)
    server.daemon_threads = True
    # The handshake happens in the handler's thread: a client the censor stalls holds
    # only its own thread, never the accept loop.
    server.socket = context.wrap_socket(
        server.socket, server_side=True, do_handshake_on_connect=False
    )
    emit({"event": "ready", "addr": args.addr, "port": args.port})
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
