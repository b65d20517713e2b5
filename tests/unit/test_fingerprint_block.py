"""DTLS fingerprint blocking on the engine's packet path, with aiortc's real ClientHello:
the russia-tspu-dtls-2021 profile's fingerprint is the one the webrtc app sends, found
whichever peer of the UDP flow spoke first and after ICE's STUN checks on the same 5-tuple
(RFC 7983 multiplexing); another ClientHello passes."""

from __future__ import annotations

import pytest
from aioice import stun
from aiortc.rtcdtlstransport import SRTP_PROFILES, RTCCertificate
from OpenSSL import SSL

from censor_sims.engine import verdicts
from censor_sims.engine.engine import Engine
from censor_sims.engine.packet import build_udp
from censor_sims.events import EventLog
from censor_sims.profiles import load_profile
from censor_sims.technique import Technique
from censor_sims.techniques.fingerprint_block import FingerprintBlock
from tests.unit.test_engine import FakeQueuedPacket, RecordingSender

CALLER, CALLEE = ("10.0.0.10", 50000), ("10.0.1.142", 40000)


def aiortc_client_hello() -> bytes:
    """The first DTLS flight of aiortc's own context (what the webrtc app's peers send)."""
    conn = SSL.Connection(RTCCertificate.generateCertificate()._create_ssl_context(SRTP_PROFILES))
    conn.set_connect_state()
    with pytest.raises(SSL.WantReadError):
        conn.do_handshake()
    return conn.bio_read(65536)


def binding_request() -> bytes:
    return bytes(stun.Message(stun.Method.BINDING, stun.Class.REQUEST))


def profile_technique() -> Technique:
    (spec,) = load_profile("russia-tspu-dtls-2021")["techniques"]
    return Technique.registry[spec["type"]].model_validate(spec)


def send(engine: Engine, src: tuple[str, int], dst: tuple[str, int], data: bytes) -> str:
    pkt = FakeQueuedPacket(build_udp(src[0], dst[0], src[1], dst[1], data))
    engine.on_packet(pkt)
    return "drop" if pkt.mark == verdicts.mark(verdicts.DROP) else "pass"


def test_the_profile_drops_aiortcs_client_hello_sent_by_the_peer_that_spoke_second(
    tmp_path,
) -> None:
    engine = Engine([profile_technique()], EventLog(tmp_path / "e.jsonl"), sender=RecordingSender())
    # The callee's check opens the flow (its "client"); checks go both ways, then the caller,
    # the DTLS client here, sends its ClientHello.
    for src, dst in [(CALLEE, CALLER), (CALLER, CALLEE)] * 3:
        assert send(engine, src, dst, binding_request()) == "pass"
    assert send(engine, CALLER, CALLEE, aiortc_client_hello()) == "drop"
    (event,) = [e for e in engine.log.read() if e["action"] == "drop"]
    assert event["technique"] == "tspu-dtls-fingerprint"
    assert event["rule"] == (
        "dtls ClientHello fingerprint: DTLS1.2, extensions [65281, 11, 10, 14, 22, 23, 13]"
    )
    assert event["analyzer"]["dtls"]["use_srtp"] is True


def test_another_fingerprint_passes(tmp_path) -> None:
    other = FingerprintBlock(fingerprints=[{"version": "DTLS1.2", "extensions": [65281, 11, 10]}])
    engine = Engine([other], EventLog(tmp_path / "e.jsonl"), sender=RecordingSender())
    assert send(engine, CALLER, CALLEE, aiortc_client_hello()) == "pass"
    assert [e for e in engine.log.read() if e["action"] == "drop"] == []


def test_rst_on_udp_is_a_drop(tmp_path) -> None:
    rst = FingerprintBlock(
        action="rst", fingerprints=[{"extensions": [65281, 11, 10, 14, 22, 23, 13]}]
    )
    engine = Engine([rst], EventLog(tmp_path / "e.jsonl"), sender=RecordingSender())
    assert send(engine, CALLER, CALLEE, aiortc_client_hello()) == "drop"
    assert engine.raw.sent == []  # no RST forged for a UDP flow
