"""OpenVPN: the control-channel reset that opens every session, over UDP or TCP.

Each packet starts with opcode (high 5 bits) and key id (low 3 bits), then the sender's
8-byte session id (OpenVPN `src/openvpn/ssl_pkt.h`, `ssl_common.h`; protocol notes in
`doc/doxygen/doc_protocol_overview.h`). Over TCP every packet carries a 2-byte length
first. A client opens with P_CONTROL_HARD_RESET_CLIENT_V2 (7), or V3 (10) with
tls-crypt-v2; the server answers P_CONTROL_HARD_RESET_SERVER_V2 (8). The opcode sequence of
the first packets is the fingerprint of Xue et al., "OpenVPN is Open to VPN
Fingerprinting" (USENIX Security 2022): `client_opcodes` publishes it for rules to match.
"""

from __future__ import annotations

from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Stream, Update

OPCODES = {
    1: "P_CONTROL_HARD_RESET_CLIENT_V1",
    2: "P_CONTROL_HARD_RESET_SERVER_V1",
    3: "P_CONTROL_SOFT_RESET_V1",
    4: "P_CONTROL_V1",
    5: "P_ACK_V1",
    6: "P_DATA_V1",
    7: "P_CONTROL_HARD_RESET_CLIENT_V2",
    8: "P_CONTROL_HARD_RESET_SERVER_V2",
    9: "P_DATA_V2",
    10: "P_CONTROL_HARD_RESET_CLIENT_V3",
    11: "P_CONTROL_WKC_V1",
}
CLIENT_RESETS = (1, 7, 10)
SERVER_RESETS = (2, 8)
MIN_RESET = 14  # opcode + session id + empty ack array + message packet id, no tls-auth
MAX_PACKET = 1600
FINGERPRINT_PACKETS = 8
# A client's first packet has nothing to acknowledge and is message 0; with tls-auth or
# tls-crypt its replay packet id is 1 and a Unix time follows. Checking that layout, not
# the first byte alone, keeps 3 in 256 other UDP payloads (a DNS query whose random id
# starts 0x08, 0x38 or 0x50) from reading as a reset.
HMAC_SIZES = (20, 32, 64)  # tls-auth with SHA1, SHA256, SHA512
FIRST_REPLAY_ID = b"\x00\x00\x00\x01"
PLAUSIBLE_TIME = (0x4B000000, 0xF4000000)  # 2009 .. 2099


def reset_layout(packet: bytes) -> str | None:
    """How a client's hard reset is wrapped (plain, tls-auth, tls-crypt), or None when the
    bytes after the session id are not a first control packet's."""
    if _first_message(packet, 9):
        return "plain"
    for size in HMAC_SIZES:
        replay = 9 + size
        if packet[replay : replay + 4] == FIRST_REPLAY_ID and _first_message(packet, replay + 8):
            return "tls-auth"
    if packet[9:13] == FIRST_REPLAY_ID and len(packet) >= 9 + 8 + 32:
        low, high = PLAUSIBLE_TIME
        if low <= int.from_bytes(packet[13:17], "big") < high:
            return "tls-crypt"
    return None


def _first_message(packet: bytes, at: int) -> bool:
    """An empty ACK array, then message packet id 0."""
    return len(packet) >= at + 5 and packet[at : at + 5] == b"\x00" * 5


class OpenVpnStream(Stream):
    __slots__ = ("bufs", "opcodes", "server_seen", "tcp")

    def __init__(self, tcp: bool) -> None:
        self.tcp = tcp
        self.bufs = [b"", b""]
        self.opcodes: list[int] = []
        self.server_seen = False

    def feed(self, rev: bool, data: bytes) -> Update:
        side = 1 if rev else 0
        packets = self._packets(side, data) if self.tcp else [data]
        props: dict[str, Any] = {}
        for packet in packets:
            if side == 0:
                if not self._client(packet, props):
                    return props or None, True
            elif (
                not self.server_seen
                and self.opcodes
                and len(packet) >= MIN_RESET
                and packet[0] >> 3 in SERVER_RESETS
            ):
                self.server_seen = True
                props.update(server_reset=True, server_session_id=packet[1:9].hex())
        return props or None, len(self.opcodes) >= FINGERPRINT_PACKETS

    def _client(self, packet: bytes, props: dict[str, Any]) -> bool:
        """Record one client packet; False when the flow cannot be OpenVPN."""
        if not packet:
            return bool(self.opcodes)
        opcode, key_id = packet[0] >> 3, packet[0] & 0x07
        if not self.opcodes:
            if opcode not in CLIENT_RESETS or key_id != 0 or len(packet) < MIN_RESET:
                return False
            layout = reset_layout(packet)
            if layout is None:
                return False
            props.update(
                yes=True,
                opcode=OPCODES[opcode],
                layout=layout,
                key_id=key_id,
                session_id=packet[1:9].hex(),
                reset_size=len(packet),
                transport="tcp" if self.tcp else "udp",
            )
        if len(self.opcodes) < FINGERPRINT_PACKETS:
            self.opcodes.append(opcode)
            props["client_opcodes"] = list(self.opcodes)
        return True

    def _packets(self, side: int, data: bytes) -> list[bytes]:
        """Split the TCP stream into packets by their 2-byte length prefix."""
        buf = self.bufs[side] + data
        out = []
        while len(buf) >= 2:
            length = (buf[0] << 8) | buf[1]
            if length == 0 or length > MAX_PACKET:
                buf = b""
                out.append(b"")  # unframeable: counts as a non-OpenVPN packet
                break
            if len(buf) < 2 + length:
                break
            out.append(buf[2 : 2 + length])
            buf = buf[2 + length :]
        self.bufs[side] = buf
        return out


class OpenVpnAnalyzer(Analyzer):
    """`openvpn.*`: yes (a client hard reset opened the flow), opcode (its name), layout
    (plain, tls-auth, tls-crypt), key_id, session_id (hex), reset_size, transport,
    client_opcodes (first 8, as numbers); server_reset, server_session_id."""

    name = "openvpn"
    limit = 8192

    def new_udp(self, info: FlowInfo) -> Stream:
        return OpenVpnStream(tcp=False)

    def new_tcp(self, info: FlowInfo) -> Stream:
        return OpenVpnStream(tcp=True)
