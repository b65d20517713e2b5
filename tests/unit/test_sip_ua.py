"""The UA's transaction and dialog logic over a fake transport (no sockets), and the
agent's outcome mapping."""

from __future__ import annotations

import asyncio
import errno

import pytest

from harness.apps.sip import agent, sdp, transaction
from harness.apps.sip import ua as ua_module
from harness.apps.sip.message import SipMessage, parse, response, tag_of
from harness.apps.sip.transport import Inbound
from harness.apps.sip.ua import SipFinal, UserAgent
from harness.net.resolve import DnsFailure
from harness.net.socks5 import Socks5Error

PROXY = ("10.0.0.2", 5060)


class FakeTransport:
    def __init__(self, reliable: bool = False) -> None:
        self.reliable = reliable
        self.local = ("10.0.1.2", 41000)
        self.sent: list[SipMessage] = []

    def send(self, data: bytes) -> None:
        self.sent.append(parse(data))

    def close(self) -> None:
        pass


def make_ua(reliable: bool = False, user: str = "alice") -> tuple[UserAgent, FakeTransport]:
    ua = UserAgent(user, "voip.test", "tcp" if reliable else "udp")
    fake = FakeTransport(reliable)
    ua.transport = fake  # type: ignore[assignment]
    return ua, fake


def deliver(ua: UserAgent, msg: SipMessage, replies: list[SipMessage] | None = None) -> None:
    sink = replies if replies is not None else []
    ua._on_inbound(Inbound(parse(msg.encode()), PROXY, lambda data: sink.append(parse(data))))


def test_register_retransmits_on_udp_until_the_final(monkeypatch) -> None:
    monkeypatch.setattr(transaction, "T1", 0.01)

    async def go() -> FakeTransport:
        ua, fake = make_ua()
        task = asyncio.ensure_future(ua.register(timeout=1.0))
        await asyncio.sleep(0.08)  # 10, 20, 40 ms: three retransmissions
        deliver(ua, response(fake.sent[0], 200, to_tag="r1"))
        await task
        return fake

    fake = asyncio.run(go())
    req = fake.sent[0]
    assert req.method == "REGISTER" and req.uri == "sip:voip.test"
    assert req.get("contact") == "<sip:alice@10.0.1.2:41000>"
    via = req.top_via()
    assert via.branch.startswith("z9hG4bK") and "rport" in via.params
    assert 3 <= len(fake.sent) <= 5 and all(m.encode() == req.encode() for m in fake.sent)


def test_register_rejected_raises_sip_final() -> None:
    async def go() -> None:
        ua, fake = make_ua(reliable=True)
        task = asyncio.ensure_future(ua.register(timeout=1.0))
        await asyncio.sleep(0)
        deliver(ua, response(fake.sent[0], 403, to_tag="r1"))
        await task

    with pytest.raises(SipFinal) as info:
        asyncio.run(go())
    assert info.value.status == 403


def test_invite_200_ack_and_re_ack_of_a_retransmitted_200() -> None:
    progress: list[int] = []

    async def go() -> FakeTransport:
        ua, fake = make_ua()
        offer = sdp.build("10.0.1.2", 40000)
        task = asyncio.ensure_future(
            ua.invite("sip:bob@voip.test", offer, 2.0, lambda r: progress.append(r.status))
        )
        await asyncio.sleep(0)
        invite = fake.sent[0]
        deliver(ua, response(invite, 100))
        deliver(ua, response(invite, 180, to_tag="b1"))
        ok = response(
            invite,
            200,
            to_tag="b1",
            headers=[("Contact", "<sip:bob@10.0.0.5:40000>")],
            body=sdp.build("10.0.0.5", 30000),
        )
        deliver(ua, ok)
        call = await task
        assert call.answer == sdp.AudioOffer("10.0.0.5", 30000, (0,))
        deliver(ua, ok)  # the 200 again: our ACK was lost
        return fake

    fake = asyncio.run(go())
    invite, ack, again = fake.sent[0], fake.sent[1], fake.sent[2]
    assert progress == [100, 180]
    assert invite.get("content-type") == "application/sdp"
    assert sdp.parse_audio(invite.body).port == 40000
    assert ack.method == "ACK" and ack.uri == "sip:bob@10.0.0.5:40000"  # the Contact
    assert ack.top_via().branch != invite.top_via().branch  # a 2xx ACK is a new transaction
    assert ack.cseq == (invite.cseq[0], "ACK") and tag_of(ack.get("to") or "") == "b1"
    assert again.encode() == ack.encode()


def test_invite_rejected_is_acked_in_the_same_transaction() -> None:
    async def go() -> FakeTransport:
        ua, fake = make_ua()
        task = asyncio.ensure_future(ua.invite("sip:bob@voip.test", b"", 2.0))
        await asyncio.sleep(0)
        deliver(ua, response(fake.sent[0], 486, to_tag="b2"))
        with pytest.raises(SipFinal) as info:
            await task
        assert info.value.status == 486
        return fake

    fake = asyncio.run(go())
    invite, ack = fake.sent[0], fake.sent[1]
    assert ack.method == "ACK" and ack.uri == invite.uri
    assert ack.top_via().branch == invite.top_via().branch
    assert tag_of(ack.get("to") or "") == "b2"


def test_invite_timeout_after_ringing_sends_cancel() -> None:
    async def go() -> FakeTransport:
        ua, fake = make_ua(reliable=True)
        task = asyncio.ensure_future(ua.invite("sip:bob@voip.test", b"", 0.1))
        await asyncio.sleep(0)
        deliver(ua, response(fake.sent[0], 180, to_tag="b3"))
        with pytest.raises(TimeoutError):
            await task
        return fake

    fake = asyncio.run(go())
    cancel = fake.sent[-1]
    assert cancel.method == "CANCEL" and cancel.cseq == (fake.sent[0].cseq[0], "CANCEL")
    assert cancel.top_via().branch == fake.sent[0].top_via().branch


def test_transport_failure_reaches_a_waiting_transaction() -> None:
    async def go() -> None:
        ua, _ = make_ua(reliable=True)
        task = asyncio.ensure_future(ua.register(timeout=1.0))
        await asyncio.sleep(0)
        ua._on_failure(ConnectionResetError("RST"))
        await task

    with pytest.raises(ConnectionResetError):
        asyncio.run(go())


def incoming_invite(call_id: str = "c1", branch: str = "z9hG4bKk1") -> SipMessage:
    invite = SipMessage(method="INVITE", uri="sip:bob@10.0.0.5:40000", body=sdp.build("1.2.3.4", 9))
    invite.add("Via", f"SIP/2.0/UDP 10.0.0.2:5060;branch={branch}")
    invite.add("Via", "SIP/2.0/UDP 10.0.1.2:41000;rport=41000;branch=z9hG4bKa1")
    invite.add("From", "<sip:alice@voip.test>;tag=a1")
    invite.add("To", "<sip:bob@voip.test>")
    invite.add("Call-ID", call_id)
    invite.add("CSeq", "2 INVITE")
    return invite


def test_callee_rings_answers_and_hangs_up(monkeypatch) -> None:
    monkeypatch.setattr(ua_module, "T1", 0.01)
    replies: list[SipMessage] = []

    async def go() -> None:
        ua, _ = make_ua(user="bob")
        invite = incoming_invite()
        deliver(ua, invite, replies)
        call = ua.incoming.get_nowait()
        assert call.offer == sdp.AudioOffer("1.2.3.4", 9, (0,))
        call.ring()
        call.answer(sdp.build("10.0.0.5", 30000))
        deliver(ua, invite, replies)  # a retransmitted INVITE gets the 200 again
        deliver(ua, incoming_invite("c2", "z9hG4bKk2"), replies)  # busy
        await asyncio.sleep(0.05)  # 200 retransmitted (T1 = 10 ms) until the ACK
        ack = SipMessage(method="ACK", uri="sip:bob@10.0.0.5:40000")
        ack.add("Call-ID", "c1")
        deliver(ua, ack)
        assert call.acked.is_set()
        call.media_sent = lambda: 249  # what the callee's RTP sender sent
        bye = incoming_invite()
        bye.method, bye.body = "BYE", b""
        bye.set("CSeq", "3 BYE")
        bye.add(ua_module.MEDIA_SENT, "250")  # what the caller sent
        deliver(ua, bye, replies)
        assert call.ended.is_set() and call.peer_sent == 250
        stray = incoming_invite("nope")
        stray.method = "BYE"
        deliver(ua, stray, replies)
        ua.close()

    asyncio.run(go())
    statuses = [r.status for r in replies]
    assert statuses[:4] == [180, 200, 200, 486]
    ringing, ok = replies[0], replies[1]
    to_tag = tag_of(ringing.get("to") or "")
    assert to_tag and tag_of(ok.get("to") or "") == to_tag  # one dialog
    assert ok.get_all("via") == incoming_invite().get_all("via")
    assert sdp.parse_audio(ok.body).port == 30000
    assert statuses[-2:] == [200, 481] and replies[-2].cseq == (3, "BYE")
    assert replies[-2].get(ua_module.MEDIA_SENT) == "249"  # the peer can stop draining
    assert statuses.count(200) >= 4  # retransmissions of the 200 before the ACK


@pytest.mark.parametrize(
    ("exc", "outcome"),
    [
        (DnsFailure("x: NXDOMAIN"), "dns-failure"),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "refused"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), "reset"),
        (asyncio.IncompleteReadError(b"", 2), "reset"),
        (TimeoutError(), "timeout"),
        (OSError(errno.EHOSTUNREACH, "No route to host"), "refused"),
        (Socks5Error("connection refused", 5), "refused"),
        (Socks5Error("host unreachable", 4), "timeout"),
        (Socks5Error("command not supported", 7), "error"),
        (ValueError("bug"), "error"),
    ],
)
def test_outcome_mapping(exc: BaseException, outcome: str) -> None:
    assert agent.classify(exc, "REGISTER")[0] == outcome


def test_sip_finals_map_to_4xx_and_5xx_with_6xx_as_5xx() -> None:
    def final(status: int) -> SipFinal:
        return SipFinal(SipMessage(status=status, reason="x"), "INVITE")

    assert agent.classify(final(404), "INVITE") == ("sip-4xx", "INVITE: 404 x")
    assert agent.classify(final(503), "INVITE")[0] == "sip-5xx"
    assert agent.classify(final(603), "INVITE")[0] == "sip-5xx"


def test_agent_arguments() -> None:
    assert agent.hostport("voip.gatecrash.test:5070") == ("voip.gatecrash.test", 5070)
    assert agent.hostport("10.0.0.2") == ("10.0.0.2", 5060)
    base = ["--registrar", "r", "--domain", "d", "--user", "u", "--bind", "1.2.3.4"]
    args = agent.parse_args(
        ["caller", *base, "--resolver", "1.1.1.1", "--callee", "b", "--duration", "2"]
    )
    assert (args.transport, args.setup_timeout, args.socks, args.socks_udp) == (
        "udp",
        8.0,
        None,
        False,
    )
    with pytest.raises(SystemExit):
        agent.parse_args(
            ["caller", *base, "--resolver", "r", "--callee", "b", "--duration", "2", "--socks-udp"]
        )
    result = agent.new_result("caller", "udp")
    assert result["rx"]["received"] == 0 and result["outcome"] == "error"
