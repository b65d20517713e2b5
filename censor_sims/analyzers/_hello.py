"""TLS ClientHello / ServerHello bodies (RFC 8446 §4.1.2-4.1.3), shared by tls, quic and dtls.

The parsers take the handshake message *body* (after type and length) and return the
properties a censor keys on. `partial=True` keeps whatever was parsed before the input ran
out, marked `truncated`: a censor that does not reassemble TCP sees just the first segment
and still finds an SNI that happens to lie inside it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from censor_sims.analyzers._reader import Reader, Truncated

EXT_SERVER_NAME = 0x0000
EXT_USE_SRTP = 0x000E
EXT_ALPN = 0x0010
EXT_SUPPORTED_VERSIONS = 0x002B
EXT_QUIC_TRANSPORT_PARAMETERS = 0x0039
EXT_ENCRYPTED_CLIENT_HELLO = 0xFE0D

VERSION_NAMES = {
    0x0300: "SSL3.0",
    0x0301: "TLS1.0",
    0x0302: "TLS1.1",
    0x0303: "TLS1.2",
    0x0304: "TLS1.3",
    0xFEFF: "DTLS1.0",
    0xFEFD: "DTLS1.2",
    0xFEFC: "DTLS1.3",
}
# Newness order: DTLS counts down (1's complement of the TLS numbers, RFC 6347 §4.1).
_RANK = {0x0300: 0, 0x0301: 1, 0x0302: 2, 0x0303: 3, 0x0304: 4, 0xFEFF: 2, 0xFEFD: 3, 0xFEFC: 4}

# ServerHello.random of a HelloRetryRequest (RFC 8446 §4.1.3): SHA-256("HelloRetryRequest").
HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


def is_grease(value: int) -> bool:
    """RFC 8701 GREASE values (0x0a0a, 0x1a1a, ... 0xfafa): noise, never a real choice."""
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def version_name(value: int) -> str:
    return VERSION_NAMES.get(value, f"0x{value:04x}")


def _latin1(data: bytes) -> str:
    return data.decode("latin-1")  # total: a censor compares bytes, we never fail on them


def _server_name(r: Reader) -> str | None:
    names = r.vec16()
    while names.remaining:
        kind = names.u8()
        name = names.vec16().rest()
        if kind == 0:  # host_name (RFC 6066 §3)
            return _latin1(name)
    return None


def _alpn(r: Reader) -> list[str]:
    protocols = r.vec16()
    out = []
    while protocols.remaining:
        out.append(_latin1(protocols.vec8().rest()))
    return out


def _client_versions(r: Reader) -> list[int]:
    versions = r.vec8()
    out = []
    while versions.remaining:
        v = versions.u16()
        if not is_grease(v):
            out.append(v)
    return out


def _extensions(r: Reader, props: dict[str, Any], *, client: bool, partial: bool) -> None:
    """Walk the extension block (plain index arithmetic: this loop is the hot path).

    When partial, a block cut short yields the extensions that arrived whole.
    """
    ids: list[int] = []
    props["extensions"] = ids
    if r.remaining < 2:
        return  # no extensions at all (legal before TLS 1.2)
    length = r.u16()
    buf, pos = r.buf, r.pos
    end = pos + length
    if end > r.end:
        if not partial:
            raise Truncated("extension block runs past the message")
        props["truncated"] = True
        end = r.end
    r.pos = end
    while pos + 4 <= end:
        ext_type = (buf[pos] << 8) | buf[pos + 1]
        body_end = pos + 4 + ((buf[pos + 2] << 8) | buf[pos + 3])
        if body_end > end:
            if partial:
                props["truncated"] = True
                return
            raise Truncated("extension runs past the block")
        if (ext_type & 0x0F0F) != 0x0A0A or (ext_type >> 8) != (ext_type & 0xFF):
            ids.append(ext_type)  # GREASE left out
        if ext_type in _HANDLERS:
            _HANDLERS[ext_type](Reader(buf, pos + 4, body_end), props, client)
        pos = body_end
    if pos != end and not partial:
        raise Truncated("stray bytes after the extensions")


Handler = Callable[[Reader, dict[str, Any], bool], None]


def _on_server_name(body: Reader, props: dict[str, Any], client: bool) -> None:
    if client:
        props["sni"] = _server_name(body)


def _on_alpn(body: Reader, props: dict[str, Any], client: bool) -> None:
    props["alpn" if client else "server_alpn"] = _alpn(body)


def _on_supported_versions(body: Reader, props: dict[str, Any], client: bool) -> None:
    props["_versions"] = _client_versions(body) if client else [body.u16()]


def _flag(name: str) -> Handler:
    def on(body: Reader, props: dict[str, Any], client: bool) -> None:
        props[name] = True

    return on


_HANDLERS: dict[int, Handler] = {
    EXT_SERVER_NAME: _on_server_name,
    EXT_ALPN: _on_alpn,
    EXT_SUPPORTED_VERSIONS: _on_supported_versions,
    EXT_ENCRYPTED_CLIENT_HELLO: _flag("ech"),
    EXT_USE_SRTP: _flag("use_srtp"),
    EXT_QUIC_TRANSPORT_PARAMETERS: _flag("quic_transport_parameters"),
}


def parse_client_hello(body: bytes, *, dtls: bool = False, partial: bool = False) -> dict | None:
    """Properties of a ClientHello body; None when it is malformed (or cut, unless partial).

    Publishes: client_version (legacy field), sni, alpn, supported_versions, version (the
    newest offered), ech, use_srtp, quic_transport_parameters, extensions (type numbers,
    GREASE left out), truncated (partial only).
    """
    r = Reader(body)
    props: dict[str, Any] = {"handshake": "client_hello"}
    legacy = None
    try:
        legacy = r.u16()
        r.skip(32)  # random
        r.vec8()  # legacy_session_id
        if dtls:
            r.vec8()  # cookie (RFC 6347 §4.2.1)
        r.vec16()  # cipher_suites
        r.vec8()  # legacy_compression_methods
        _extensions(r, props, client=True, partial=partial)
    except Truncated:
        if not partial or legacy is None:
            return None
        props["truncated"] = True
    props["client_version"] = version_name(legacy)
    offered = props.pop("_versions", None)
    if offered is None and props.get("truncated"):
        return props  # the supported_versions extension may lie beyond the cut
    offered = offered or [legacy]
    props["supported_versions"] = [version_name(v) for v in offered]
    props["version"] = version_name(max(offered, key=lambda v: _RANK.get(v, -1)))
    return props


def parse_server_hello(body: bytes) -> dict | None:
    """Properties of a ServerHello body: server_version (negotiated), cipher, server_alpn."""
    r = Reader(body)
    props: dict[str, Any] = {"server_hello": True}
    try:
        legacy = r.u16()
        random = r.take(32)
        r.vec8()  # legacy_session_id_echo
        props["cipher"] = r.u16()
        r.u8()  # legacy_compression_method
        _extensions(r, props, client=False, partial=False)
    except Truncated:
        return None
    if random == HRR_RANDOM:
        props["hello_retry_request"] = True
    selected = props.pop("_versions", None) or [legacy]
    props["server_version"] = version_name(selected[0])
    props.pop("extensions", None)
    return props
