"""ICE policies -> the TURN/STUN URLs and transport policy of each connection attempt, and
the selected candidate pair read back from aioice.

aiortc uses only the first TURN URL it is given, so a browser's "give every URL, let ICE
choose" cannot be reproduced in one attempt. Policy `all` instead tries, in order, what
real apps fall back through: everything over UDP (host, srflx via STUN, relay via TURN/UDP),
then TURN over TLS on 443 (looks like HTTPS), then TURN over TCP 3478, each attempt with its
own timeout; the result names the attempt that won.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiortc import RTCConfiguration, RTCIceServer
from aiortc.rtcconfiguration import RTCBundlePolicy, RTCIceTransportPolicy

from harness.apps.webrtc.coturn import STUN_PORT, TLS_PORT

IcePolicy = Literal["all", "udp-only", "relay", "relay-tcp", "relay-tls"]
POLICIES: tuple[str, ...] = ("all", "udp-only", "relay", "relay-tcp", "relay-tls")


@dataclass(frozen=True)
class Attempt:
    """One RTCPeerConnection configuration: at most one STUN and one TURN URL."""

    name: str  # udp | tls | tcp: how the caller reaches the TURN server
    turn_url: str
    stun_url: str | None
    relay_only: bool

    def configuration(self, user: str, password: str) -> RTCConfiguration:
        servers = [RTCIceServer(self.turn_url, username=user, credential=password)]
        if self.stun_url:
            servers.append(RTCIceServer(self.stun_url))
        policy = RTCIceTransportPolicy.RELAY if self.relay_only else RTCIceTransportPolicy.ALL
        return RTCConfiguration(
            iceServers=servers, iceTransportPolicy=policy, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE
        )


def attempts(policy: str, turn_ip: str) -> list[Attempt]:
    """The attempts of a policy, in the order they are tried."""
    udp = f"turn:{turn_ip}:{STUN_PORT}?transport=udp"
    tcp = f"turn:{turn_ip}:{STUN_PORT}?transport=tcp"
    tls = f"turns:{turn_ip}:{TLS_PORT}?transport=tcp"
    stun = f"stun:{turn_ip}:{STUN_PORT}"
    table = {
        "all": [
            Attempt("udp", udp, stun, False),
            Attempt("tls", tls, None, False),
            Attempt("tcp", tcp, None, False),
        ],
        "udp-only": [Attempt("udp", udp, stun, False)],
        "relay": [Attempt("udp", udp, None, True)],
        "relay-tcp": [Attempt("tcp", tcp, None, True)],
        "relay-tls": [Attempt("tls", tls, None, True)],
    }
    if policy not in table:
        raise ValueError(f"unknown ICE policy {policy!r}; valid: {', '.join(POLICIES)}")
    return table[policy]


def peer_configuration() -> RTCConfiguration:
    """The callee's: host candidates only (it is reachable outside). An empty server list,
    not None: aiortc would otherwise ask Google's public STUN server."""
    return RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


def ice_connection(pc: Any) -> Any:
    """The aioice Connection under a peer connection (aiortc exposes no selected pair)."""
    for transceiver in pc.getTransceivers():
        transport = transceiver.sender.transport
        if transport is not None:
            return transport.transport._connection
    sctp = pc.sctp
    return sctp.transport.transport._connection if sctp is not None else None


def selected_pair(pc: Any, turn_transport: str | None) -> dict[str, Any] | None:
    """Type, transport and addresses of the nominated pair of component 1.

    `turn_transport` is how this side reaches its TURN server (udp/tcp/tls): a relay
    candidate's own address is always UDP on the server, the leg to it is what a censor sees.
    """
    conn = ice_connection(pc)
    pair = getattr(conn, "_nominated", {}).get(1) if conn is not None else None
    if pair is None:
        return None
    local, remote = pair.local_candidate, pair.remote_candidate
    transport = turn_transport if local.type == "relay" and turn_transport else "udp"
    return {
        "local_type": local.type,
        "local_transport": transport,
        "local_address": f"{local.host}:{local.port}",
        "remote_type": remote.type,
        "remote_address": f"{remote.host}:{remote.port}",
    }
