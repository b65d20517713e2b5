"""OSSH obfuscation and UDPGW framing against the byte layouts of the spec
(README.obfuscation, psiphon obfuscator.go / obfuscatedSshConn.go / server/udp.go), with the
expected values computed here independently, then one in-process tunnel over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import socket
import struct

import pytest
from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher

from harness.tools.psiphon_like import obfuscator as ob
from harness.tools.psiphon_like import udpgw

SEED = bytes(range(16))
KEYWORD = b"gatecrash-keyword"


def spec_key(seed: bytes, keyword: bytes, iv: bytes) -> bytes:
    d = hashlib.sha1(seed + keyword + iv).digest()
    for _ in range(6000):
        d = hashlib.sha1(d).digest()
    return d[:16]


def rc4(key: bytes):
    return Cipher(ARC4(key), mode=None).encryptor()


def test_key_derivation_matches_the_spec() -> None:
    for iv in (b"client_to_server", b"server_to_client"):
        assert ob.derive_key(SEED, KEYWORD, iv) == spec_key(SEED, KEYWORD, iv)
    # 6000 further rounds, not 5999 or 6001
    d = hashlib.sha1(SEED + KEYWORD + b"client_to_server").digest()
    for _ in range(5999):
        d = hashlib.sha1(d).digest()
    assert ob.derive_key(SEED, KEYWORD, b"client_to_server") != d[:16]
    assert ob.derive_key(SEED, KEYWORD, b"client_to_server") == hashlib.sha1(d).digest()[:16]


def test_client_seed_message_layout() -> None:
    padding = bytes(range(256)) * 2
    msg, _ = ob.client_preamble(KEYWORD, seed=SEED, padding=padding)
    assert len(msg) == 16 + 4 + 4 + len(padding)
    assert msg[:16] == SEED  # the seed travels in the clear
    plain = rc4(spec_key(SEED, KEYWORD, b"client_to_server")).update(msg[16:])
    assert plain[:4] == b"\x0b\xf5\xca\x7e"
    assert struct.unpack("!I", plain[4:8])[0] == len(padding)
    assert plain[8:] == padding
    assert b"\x0b\xf5\xca\x7e" not in msg[16:]


def test_random_padding_stays_within_psiphon_bounds() -> None:
    lengths = {len(ob.client_preamble(KEYWORD)[0]) - 24 for _ in range(200)}
    assert min(lengths) >= 32 and max(lengths) <= 8192
    assert len(lengths) > 150  # random, not fixed


def test_server_accepts_and_rejects_without_answering() -> None:
    msg, _ = ob.client_preamble(KEYWORD, seed=SEED, padding=b"p" * 40)
    session, padding_length = ob.server_accept(msg[:24], KEYWORD, "10.0.0.1", ob.SeedHistory())
    assert padding_length == 40
    assert session.c2s.cipher.apply(msg[24:]) == b"p" * 40
    with pytest.raises(ob.Rejected, match="magic"):
        ob.server_accept(msg[:24], b"wrong", "10.0.0.1", None)
    with pytest.raises(ob.Rejected, match="magic"):
        ob.server_accept(b"SSH-2.0-OpenSSH_9.2p1 De", KEYWORD, "10.0.0.1", None)
    with pytest.raises(ob.Rejected):
        ob.server_accept(msg[:20], KEYWORD, "10.0.0.1", None)


def test_oversized_padding_length_is_rejected() -> None:
    body = rc4(spec_key(SEED, KEYWORD, b"client_to_server")).update(
        struct.pack("!II", 0x0BF5CA7E, 8193)
    )
    with pytest.raises(ob.Rejected, match="padding"):
        ob.server_accept(SEED + body, KEYWORD, "10.0.0.1", None)


def test_replayed_seed_is_rejected_from_any_address_until_it_expires() -> None:
    now = [0.0]
    history = ob.SeedHistory(ttl=60, clock=lambda: now[0])
    msg, _ = ob.client_preamble(KEYWORD, seed=SEED)
    ob.server_accept(msg[:24], KEYWORD, "10.0.0.1", history)
    with pytest.raises(ob.Rejected, match="replay; same client"):
        ob.server_accept(msg[:24], KEYWORD, "10.0.0.1", history)
    # A censor replays from its own address: still a replay.
    with pytest.raises(ob.Rejected, match=r"replay; first sent by 10\.0\.0\.1"):
        ob.server_accept(msg[:24], KEYWORD, "10.0.0.2", history)
    now[0] = 61
    ob.server_accept(msg[:24], KEYWORD, "10.0.0.2", history)
    # a wrong magic is never recorded (it cannot fill the history)
    with pytest.raises(ob.Rejected, match="magic"):
        ob.server_accept(b"\x01" * 24, KEYWORD, "10.0.0.3", history)
    assert history.add_new("10.0.0.3", b"\x01" * 16)


def ssh_packet(msg_type: int, payload: bytes, padding: int = 8) -> bytes:
    body = bytes([msg_type]) + payload
    return struct.pack("!IB", len(body) + padding + 1, padding) + body + b"\0" * padding


def split(data: bytes, rng: random.Random) -> list[bytes]:
    parts, i = [], 0
    while i < len(data):
        n = rng.randint(1, 40)
        parts.append(data[i : i + n])
        i += n
    return parts


@pytest.mark.parametrize("chunk_seed", range(20))
def test_stream_round_trip_and_obfuscation_stops_after_newkeys(chunk_seed: int) -> None:
    rng = random.Random(chunk_seed)
    msg, client = ob.client_preamble(KEYWORD, seed=SEED)
    server, _ = ob.server_accept(msg[:24], KEYWORD, "10.0.0.1", None)
    server.c2s.cipher.apply(msg[24:])  # the keystream runs on from the seed message
    kex = b"SSH-2.0-gatecrash\r\n" + ssh_packet(20, b"k" * 300) + ssh_packet(30, b"e" * 32)
    newkeys = ssh_packet(21, b"")
    after = b"\x99" * 100 + ssh_packet(21, b"")  # SSH-encrypted bytes, and no second cut
    stream = kex + newkeys + after
    wire = b"".join(client.outgoing(p) for p in split(stream, rng))
    assert wire[len(kex + newkeys) :] == after  # passes unobfuscated
    assert wire[: len(kex + newkeys)] != kex + newkeys
    assert b"SSH-2.0" not in wire
    assert client.c2s.finished
    assert b"".join(server.incoming(p) for p in split(wire, rng)) == stream
    assert server.c2s.finished and not server.s2c.finished


def test_server_padding_lines_then_version_line_round_trip() -> None:
    for length in (2, 3, 511, 512, 513, 514, 8192):
        lines = ob.server_padding_lines(length)
        assert len(lines) == length
        assert all(len(x) + 2 <= 512 for x in lines.split(b"\r\n")[:-1])
        assert lines.endswith(b"\r\n")
    server = ob.Session.from_seed(SEED, KEYWORD, is_client=False)
    _, client = ob.client_preamble(KEYWORD, seed=SEED)
    stream = ob.server_padding_lines(3000) + b"SSH-2.0-x\r\n" + ssh_packet(21, b"") + b"tail"
    wire = server.outgoing(stream)
    assert wire.endswith(b"tail") and not wire.endswith(b"\r\ntail")
    assert client.incoming(wire) == stream


def parse_packets(data: bytes) -> list[tuple[int, bytes]]:
    """(padding length, payload) of each binary packet in `data`."""
    out, i = [], 0
    while i < len(data):
        length, padding = struct.unpack_from("!IB", data, i)
        out.append((padding, data[i + 5 : i + 4 + length - padding]))
        i += 4 + length
    return out


@pytest.mark.parametrize("chunk_seed", range(10))
def test_kex_padding_varies_sizes_keeps_payloads_and_stops_after_newkeys(chunk_seed: int) -> None:
    rng = random.Random(chunk_seed)
    padder = ob.KexPadder(rand=rng.randrange)
    packets = [ssh_packet(20, b"k" * 300, 4), ssh_packet(30, b"e" * 32, 6), ssh_packet(21, b"")]
    ident = b"SSH-2.0-x\r\n"
    stream = ident + b"".join(packets) + b"\x99" * 50
    out = b"".join(padder.feed(p) for p in split(stream, rng))
    assert padder.finished and out.startswith(ident) and out.endswith(b"\x99" * 50)
    padded = parse_packets(out[len(ident) : -50])
    assert [p for _, p in padded] == [p for _, p in parse_packets(b"".join(packets))]
    assert all(pad <= 255 for pad, _ in padded)
    sizes = set()
    for seed in range(20):
        p = ob.KexPadder(rand=random.Random(seed).randrange)
        sizes.add(len(p.feed(ident + packets[0])))
    assert len(sizes) > 10


def test_padded_session_round_trip() -> None:
    msg, client = ob.client_preamble(KEYWORD, seed=SEED, pad_kex=True)
    server, _ = ob.server_accept(msg[:24], KEYWORD, "10.0.0.1", None, pad_kex=True)
    server.c2s.cipher.apply(msg[24:])
    kex = b"SSH-2.0-x\r\n" + ssh_packet(20, b"k" * 100) + ssh_packet(21, b"")
    plain = server.incoming(client.outgoing(kex + b"after"))
    assert plain.endswith(b"after") and server.c2s.finished
    assert [p for _, p in parse_packets(plain[11:-5])] == [b"\x14" + b"k" * 100, b"\x15"]


def test_garbage_packet_length_is_an_error() -> None:
    server = ob.Session.from_seed(SEED, KEYWORD, is_client=False)
    with pytest.raises(ob.ObfuscationError):
        server.outgoing(b"SSH-2.0-x\r\n" + struct.pack("!IB", 10_000_000, 4))


def test_udpgw_frame_layout() -> None:
    frame = udpgw.encode(udpgw.Frame(0x0102, "10.1.2.3", 5004, b"rtp"))
    # size LE = 1 flags + 2 id + 4 addr + 2 port + 3 payload = 12
    assert (
        frame == b"\x0c\x00" + b"\x00" + b"\x02\x01" + bytes([10, 1, 2, 3]) + b"\x13\x8c" + b"rtp"
    )
    v6 = udpgw.encode(udpgw.Frame(7, "fd00::1", 53, b"q"))
    assert v6[2] == udpgw.FLAG_IPV6 and len(v6) == 2 + 3 + 16 + 2 + 1
    decoder = udpgw.Decoder()
    stream = udpgw.keepalive() + frame + v6
    got = [f for i in range(len(stream)) for f in decoder.feed(stream[i : i + 1])]
    assert [(f.conn_id, f.host, f.port, f.payload) for f in got] == [
        (0x0102, "10.1.2.3", 5004, b"rtp"),
        (7, "fd00::1", 53, b"q"),
    ]
    with pytest.raises(udpgw.UdpgwError):
        udpgw.Decoder().feed(b"\x02\x00\x00\x00")


async def _tunnel_round_trip() -> dict:
    from harness.net.socks5 import ProxyAddress, Socks5Error, UdpAssociation, open_connection
    from harness.tools.psiphon_like import client, server

    async def echo(reader, writer) -> None:
        writer.write(await reader.read(100))
        await writer.drain()
        writer.close()

    class UdpEcho(asyncio.DatagramProtocol):
        def connection_made(self, transport) -> None:
            self.transport = transport

        def datagram_received(self, data, addr) -> None:
            self.transport.sendto(data, addr)

    loop = asyncio.get_running_loop()
    tcp_echo = await asyncio.start_server(echo, "127.0.0.1", 0)
    echo_port = tcp_echo.sockets[0].getsockname()[1]
    udp_echo, _ = await loop.create_datagram_endpoint(UdpEcho, local_addr=("127.0.0.1", 0))
    udp_port = udp_echo.get_extra_info("sockname")[1]
    ossh = server.OsshServer("kw", "pw")
    listener = await asyncio.start_server(ossh.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    conn = await client.connect(f"127.0.0.1:{port}", "kw", "pw")
    channel = client.UdpgwChannel(conn)
    socks = await asyncio.start_server(
        client.Socks5Server(conn.open_connection, channel.send).handle, "127.0.0.1", 0
    )
    proxy = ProxyAddress("127.0.0.1", socks.sockets[0].getsockname()[1])
    reader, writer = await open_connection(proxy, "127.0.0.1", echo_port)
    writer.write(b"hello")
    tcp_reply = await asyncio.wait_for(reader.read(100), 5)
    writer.close()
    got: asyncio.Queue = asyncio.Queue()
    assoc = await UdpAssociation.open(proxy, lambda data, addr: got.put_nowait((data, addr)))
    assoc.sendto(b"dgram", ("127.0.0.1", udp_port))
    udp_reply = await asyncio.wait_for(got.get(), 5)
    assoc.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        await open_connection(proxy, "127.0.0.1", closed_port)
        refused = 0
    except Socks5Error as exc:
        refused = exc.code
    conn.close()
    for s in (socks, listener, tcp_echo):
        s.close()
    udp_echo.close()
    return {"tcp": tcp_reply, "udp": udp_reply, "udp_port": udp_port, "refused": refused}


def test_in_process_tunnel_carries_tcp_and_udpgw() -> None:
    result = asyncio.run(_tunnel_round_trip())
    assert result["tcp"] == b"hello"
    assert result["udp"] == (b"dgram", ("127.0.0.1", result["udp_port"]))
    assert result["refused"] == 5  # the SSH channel open failed: "connection refused"


def test_server_password_carries_session_id() -> None:
    from harness.tools.psiphon_like.server import SshServer

    ssh = SshServer("pw", "10.0.0.1")
    good = json.dumps({"SessionId": "ab" * 16, "SshPassword": "pw"})
    assert ssh.validate_password("x", good) and ssh.session_id == "ab" * 16
    assert not SshServer("pw", "p").validate_password("x", json.dumps({"SessionId": "a"}))
    assert not SshServer("pw", "p").validate_password("x", "pw")
    bad = json.dumps({"SessionId": "a", "SshPassword": "nope"})
    assert not SshServer("pw", "p").validate_password("x", bad)


def test_the_censors_ssh_analyzer_sees_plain_ssh_but_not_ossh() -> None:
    from censor_sims.analyzers.ssh import SshStream

    stream = b"SSH-2.0-OpenSSH_9.2p1\r\n" + ssh_packet(20, b"k" * 300)
    assert SshStream().feed(False, stream)[0]["yes"]
    msg, client = ob.client_preamble(KEYWORD)
    props, _ = SshStream().feed(False, msg + client.outgoing(stream))
    assert props is None
