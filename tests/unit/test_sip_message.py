"""SIP message syntax, SDP and the Kamailio config: parse what real peers send, build what
they accept."""

from __future__ import annotations

import pytest

from harness.apps.sip import sdp
from harness.apps.sip.kamailio import kamailio_argv, kamailio_config
from harness.apps.sip.message import (
    SipMessage,
    SipParseError,
    StreamFramer,
    parse,
    parse_uri,
    parse_via,
    response,
    split_values,
    tag_of,
    uri_of,
    with_tag,
)

# What Kamailio relays to a callee: its own Via on top, compact and folded headers.
INVITE = (
    b"INVITE sip:bob@10.0.0.5:40000 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bKproxy.1\r\n"
    b"v: SIP/2.0/UDP 10.0.1.2:41000;received=10.0.2.9;rport=5555;branch=z9hG4bKabc,\r\n"
    b" SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKold\r\n"
    b'f: "Alice, A." <sip:alice@voip.test>;tag=a1\r\n'
    b"To: <sip:bob@voip.test>\r\n"
    b"i: call-1@10.0.1.2\r\n"
    b"CSeq: 7 INVITE\r\n"
    b"Content-Type: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\r\ntrailing"
)


def test_parse_request_with_compact_and_folded_headers() -> None:
    msg = parse(INVITE)
    assert msg.is_request and msg.method == "INVITE"
    assert msg.uri == "sip:bob@10.0.0.5:40000"
    assert msg.call_id == "call-1@10.0.1.2"
    assert msg.cseq == (7, "INVITE")
    assert msg.body == b"v=0\r"  # cut to Content-Length
    vias = msg.get_all("Via")
    assert len(vias) == 2 and vias[1].endswith("SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKold")
    assert msg.top_via().branch == "z9hG4bKproxy.1"
    assert tag_of(msg.get("from") or "") == "a1"


def test_parse_response_and_status_line_errors() -> None:
    msg = parse(b"SIP/2.0 180 Ringing\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n")
    assert not msg.is_request and msg.status == 180 and msg.reason == "Ringing"
    for bad in (b"SIP/2.0 2000 OK\r\n\r\n", b"HELLO\r\n\r\n", b"INVITE sip:x SIP/3.0\r\n\r\n"):
        with pytest.raises(SipParseError):
            parse(bad)
    with pytest.raises(SipParseError, match="Content-Length"):
        parse(b"SIP/2.0 200 OK\r\nContent-Length: 10\r\n\r\nshort")


def test_encode_always_writes_content_length_and_round_trips() -> None:
    msg = SipMessage(method="BYE", uri="sip:bob@10.0.0.5", body=b"xyz")
    msg.add("Call-ID", "c1")
    msg.add("Content-Length", "999")  # stale value: replaced
    wire = msg.encode()
    assert wire.count(b"Content-Length") == 1 and b"Content-Length: 3\r\n\r\nxyz" in wire
    again = parse(wire)
    assert (again.method, again.uri, again.call_id, again.body) == ("BYE", msg.uri, "c1", b"xyz")


def test_response_copies_vias_in_order_and_adds_to_tag() -> None:
    req = parse(INVITE)
    resp = response(req, 180, to_tag="b2")
    assert resp.status == 180 and resp.reason == "Ringing"
    assert resp.get_all("via") == req.get_all("via")
    assert tag_of(resp.get("to") or "") == "b2"
    assert resp.get("from") == req.get("from") and resp.cseq == (7, "INVITE")
    assert resp.get("content-type") is None  # the request's body headers are not copied
    tagged = response(parse(resp.encode().replace(b"SIP/2.0 180", b"SIP/2.0 200")), 200)
    assert tag_of(tagged.get("to") or "") == "b2"  # an existing tag is kept
    assert with_tag("<sip:x@y>;tag=1", "2") == "<sip:x@y>;tag=1"


def test_stream_framer_cuts_by_content_length() -> None:
    one = SipMessage(status=200, reason="OK", body=b"abc").encode()
    two = SipMessage(method="ACK", uri="sip:b@h").encode()
    framer = StreamFramer()
    stream = b"\r\n\r\n" + one + two  # CRLF keep-alives first
    out = framer.feed(stream[:20]) + framer.feed(stream[20:-3]) + framer.feed(stream[-3:])
    assert out == [one, two]
    assert parse(out[0]).body == b"abc"
    with pytest.raises(SipParseError):
        StreamFramer().feed(b"SIP/2.0 200 OK\r\nCSeq: 1 X\r\n\r\n")


def test_via_uri_and_value_helpers() -> None:
    via = parse_via("SIP/2.0/tcp 10.0.1.2:41000;rport=5555;received=10.0.2.9;branch=z9hG4bKx")
    assert (via.transport, via.host, via.port) == ("TCP", "10.0.1.2", 41000)
    assert via.params["rport"] == "5555" and via.branch == "z9hG4bKx"
    assert parse_via("SIP/2.0/UDP [2001:db8::1]:5060;rport").port == 5060
    assert split_values('"A, B" <sip:a@x>, <sip:b@y;p=1,2>') == [
        '"A, B" <sip:a@x>',
        "<sip:b@y;p=1,2>",
    ]
    assert uri_of('"Bob" <sip:bob@h:5070;transport=tcp>;expires=60') == (
        "sip:bob@h:5070;transport=tcp"
    )
    assert uri_of("sip:bob@h;tag=1") == "sip:bob@h"
    assert tag_of("sip:bob@h;tag=1") == "1" and tag_of("<sip:bob@h;tag=x>") is None
    uri = parse_uri("sip:bob@10.0.0.5:5070;transport=tcp")
    assert (uri.user, uri.host, uri.port, uri.params) == (
        "bob",
        "10.0.0.5",
        5070,
        {"transport": "tcp"},
    )


def test_sdp_offer_round_trip_and_media_level_address() -> None:
    offer = sdp.parse_audio(sdp.build("10.0.1.2", 40002, session_id=1))
    assert offer == sdp.AudioOffer("10.0.1.2", 40002, (0,))
    answer = (
        b"v=0\r\no=- 1 1 IN IP4 10.9.9.9\r\ns=-\r\nc=IN IP4 10.9.9.9\r\nt=0 0\r\n"
        b"m=video 5000 RTP/AVP 96\r\nc=IN IP4 10.7.7.7\r\n"
        b"m=audio 6000 RTP/AVP 8 0 101\r\nc=IN IP4 10.8.8.8\r\n"
    )
    assert sdp.parse_audio(answer) == sdp.AudioOffer("10.8.8.8", 6000, (8, 0, 101))
    with pytest.raises(ValueError):
        sdp.parse_audio(b"v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 5000 RTP/AVP 96\r\n")


def test_kamailio_config_and_argv_take_every_path_from_arguments(tmp_path) -> None:
    cfg = kamailio_config("10.0.0.2", 5070, "voip.gatecrash.test")
    for line in (
        "listen=udp:10.0.0.2:5070",
        "listen=tcp:10.0.0.2:5070",
        "dns=no",
        "rev_dns=no",
        'alias="voip.gatecrash.test"',
        'modparam("usrloc", "db_mode", 0)',
    ):
        assert line in cfg.splitlines()
    # tm must be loaded before sl, or sl runs stateless-only and relayed finals are late.
    assert cfg.index('"tm.so"') < cfg.index('"sl.so"')
    assert "record_route" not in cfg and "ctl.so" not in cfg and "jsonrpcs" not in cfg
    argv = kamailio_argv("k.cfg", tmp_path / "run")
    assert argv[:3] == ["kamailio", "-DD", "-E"]
    opts = dict(zip(argv[3::2], argv[4::2], strict=False))
    assert opts["-Y"] == str(tmp_path / "run") and opts["-P"].startswith(str(tmp_path / "run"))
    assert opts["-f"].startswith("/")  # absolute: Kamailio changes directory (-w)
