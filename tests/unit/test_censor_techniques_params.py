"""Parameters of http_filter, bandwidth_throttle, udp_throttle and dns_poison: bad input
names the key and the valid ones; good input compiles to the kernel plan the docstrings
describe; the packets the engine injects (block page, forged DNS) are what they claim.
The engine runs without a kernel queue here (FakeQueuedPacket, RecordingSender)."""

from __future__ import annotations

import struct

import pytest
from dnslib import DNSRecord

from censor_sims.engine import verdicts
from censor_sims.engine.engine import Engine
from censor_sims.engine.packet import ACK, FIN, RST, TCP, build_tcp, build_udp, parse
from censor_sims.events import EventLog
from censor_sims.technique import CensorContext, KernelPlan
from censor_sims.techniques.bandwidth_throttle import BandwidthThrottle
from censor_sims.techniques.dns_poison import DnsPoison
from censor_sims.techniques.http_filter import HttpFilter
from censor_sims.techniques.udp_throttle import UdpThrottle
from harness.cli import main
from harness.scenario import ScenarioError, parse_scenario
from tests.unit.test_engine import FakeQueuedPacket, RecordingSender, _verify_l4_checksum

CLIENT, SERVER = "10.77.0.10", "10.77.0.142"


def _scenario_error(technique: str) -> str:
    text = f"name: x\napps: [sip]\ntools: [direct]\ncensors:\n  c:\n    - {technique}\n"
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text, "s.yaml")
    return str(err.value)


@pytest.mark.parametrize(
    ("technique", "valid"),
    [
        ("{type: http_filter, names: [x.test], colour: red}", "keywords"),
        ("{type: bandwidth_throttle, names: [x.test], colour: red}", "slots"),
        ("{type: udp_throttle, colour: red}", "jitter"),
        ("{type: dns_poison, names: [x.test], colour: red}", "lie"),
    ],
)
def test_unknown_parameter_names_it_and_the_valid_ones(technique: str, valid: str) -> None:
    message = _scenario_error(technique)
    assert "s.yaml:6:" in message and "unknown key 'colour'" in message
    assert "valid keys:" in message and valid in message


@pytest.mark.parametrize(
    ("technique", "expected"),
    [
        ("{type: http_filter, action: rst}", "needs names (Host) or keywords"),
        ("{type: http_filter, names: [x], action: redirect}", "'rst', 'drop' or 'block_page'"),
        ("{type: bandwidth_throttle, rate: 150kbit}", "needs names (SNI) or protocols"),
        ("{type: bandwidth_throttle, names: [x], rate: fast}", "is not a rate"),
        ("{type: bandwidth_throttle, protocols: [skype]}", "'skype' is not allowed"),
        ("{type: udp_throttle, scope: ports}", "scope ports needs ports"),
        ("{type: udp_throttle, delay: 10, jitter: 20}", "exceeds delay"),
        ("{type: udp_throttle, jitter: 5}", "jitter needs a delay"),
        ("{type: udp_throttle, scope: voip, direction: upstream}", "only direction 'both'"),
        ("{type: dns_poison, mode: resolver, names: [x], match: regex}", "use match suffix"),
        ("{type: dns_poison, names: [x], lie: nxdomain}", "is for mode resolver"),
        ("{type: dns_poison, names: [x], answer: nowhere}", "IPv4"),
    ],
)
def test_bad_values_say_why(technique: str, expected: str) -> None:
    assert expected in _scenario_error(technique)


def test_shipped_profiles_load_by_name() -> None:
    scenario = parse_scenario(
        "name: x\napps: [sip]\ntools: [direct]\ncensors: {g: gfw-2023, i: iran-2020, "
        "r: russia-tspu-2021}\n"
    )
    assert [t.type for t in scenario.censors["g"]] == [
        "dns_poison", "sni_filter", "sni_filter", "fet_block"]  # fmt: skip
    assert scenario.censors["i"][0].residual == 60
    tspu = scenario.censors["r"][0]
    assert tspu.type == "bandwidth_throttle" and 130e3 <= float(tspu.rate[:-4]) * 1e3 <= 150e3


def test_censors_list_shows_new_techniques_and_profiles(capsys) -> None:
    assert main(["censors", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("http_filter", "bandwidth_throttle", "gfw-2023", "iran-2020",
                 "russia-tspu-2021", "voip-blocker", "block_page"):  # fmt: skip
        assert name in out, name


def _compile(*techniques) -> KernelPlan:
    ctx, plan = CensorContext({"censor-inside": "10.77.0.1"}), KernelPlan()
    for t in techniques:
        t.compile(ctx, plan)
    return plan


def test_udp_throttle_kernel_parameters_still_compile_as_before() -> None:
    plan = _compile(UdpThrottle(rate="16kbit", loss=0.1, ports=[4000]))
    assert not plan.engine and len(plan.tc_classes) == 2
    specs = [" ".join(r.spec) for r in plan.rules]
    assert sum("CLASSIFY" in s and "--dports 4000" in s for s in specs) == 1
    assert sum("--probability 0.100000 -j DROP" in s for s in specs) == 2


def test_udp_throttle_delay_queues_whole_flows_after_classify() -> None:
    t = UdpThrottle(rate="64kbit", delay=50, jitter=10)
    plan = _compile(t)
    mangle = [r.spec for r in plan.rules if r.table == "mangle" and r.chain == "FORWARD"]
    assert [s[s.index("-j") + 1] for s in mangle] == ["CLASSIFY", "NFQUEUE", "CLASSIFY", "NFQUEUE"]
    assert plan.engine and t.delay_queue not in (None, 0)
    assert "connbytes" not in " ".join(mangle[1])  # every packet, not the first few
    draws = [t.hold_seconds() for _ in range(2000)]
    assert min(draws) >= 0.040 and max(draws) <= 0.060
    assert abs(sum(draws) / len(draws) - 0.050) < 0.001


def test_udp_throttle_voip_scope_is_decided_by_the_engine(tmp_path) -> None:
    t = UdpThrottle(scope="voip", rate="32kbit", per="flow", slots=3, loss=0.2)
    plan = _compile(t)
    assert t.userspace and t.analyzers == ("rtp", "sip", "stun", "dtls")
    assert len(plan.tc_classes) == 6  # 3 slots x 2 legs
    losses = [r for r in plan.rules if "statistic" in r.spec]
    assert len(losses) == 3 and all("connmark" in r.spec for r in losses)
    engine = Engine([t], EventLog(tmp_path / "e.jsonl"), sender=RecordingSender())
    marks = []
    for sport in (40000, 40002):
        for seq in range(4):
            rtp = struct.pack("!BBHII", 0x80, 0, seq, seq * 160, 0x1234) + bytes(160)
            pkt = FakeQueuedPacket(build_udp(CLIENT, SERVER, sport, 5004, rtp))
            engine.on_packet(pkt)
        marks.append(pkt.mark)
    assert marks == [verdicts.mark(t._code), verdicts.mark(t._code + 1)]


def test_bandwidth_throttle_gives_each_flow_its_own_classes(tmp_path) -> None:
    t = BandwidthThrottle(names=["twitter.com"], rate="140kbit", slots=2)
    plan = _compile(t)
    assert len(plan.tc_classes) == 4 and {c.rate for c in plan.tc_classes} == {"140kbit"}
    classify = [r.spec for r in plan.rules if "CLASSIFY" in r.spec]
    assert [s[s.index("--mark") + 1] for s in classify][::2] == [
        verdicts.mark_spec(t._code), verdicts.mark_spec(t._code + 1)]  # fmt: skip


def _request(host: str, extra: str = "") -> bytes:
    return f"GET /page{extra} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: t\r\n\r\n".encode()


def _http_request(host: str, extra: str = "") -> bytes:
    request = _request(host, extra)
    return build_tcp(CLIENT, SERVER, 40000, 80, 1000, 5000, 0x18, window=512, payload=request)


def test_http_filter_block_page_answers_client_and_resets_server(tmp_path) -> None:
    sender = RecordingSender()
    engine = Engine([HttpFilter(names=["blocked.test"], action="block_page", body="no")],
                    EventLog(tmp_path / "e.jsonl"), sender=sender)  # fmt: skip
    pkt = FakeQueuedPacket(_http_request("blocked.test"))
    engine.on_packet(pkt)
    assert pkt.mark == verdicts.mark(verdicts.DROP)  # the request never reaches the server
    to_client, to_server = (parse(raw) for raw in sender.sent)
    after_request = 1000 + len(_request("blocked.test"))
    assert (to_client.src, to_client.dst, to_client.seq, to_client.ack) == (
        SERVER, CLIENT, 5000, after_request)  # fmt: skip
    assert to_client.flags & FIN and to_client.flags & ACK
    assert to_client.payload.startswith(b"HTTP/1.1 403 ") and to_client.payload.endswith(b"no")
    assert (to_server.dst, to_server.seq, to_server.flags) == (SERVER, 1000, RST)
    assert all(_verify_l4_checksum(raw) for raw in sender.sent)


def test_http_filter_keyword_anywhere_in_the_head_and_other_hosts_pass(tmp_path) -> None:
    engine = Engine([HttpFilter(keywords=["FALUN"], action="rst")],
                    EventLog(tmp_path / "e.jsonl"), sender=RecordingSender())  # fmt: skip
    clean = FakeQueuedPacket(_http_request("ok.test"))
    engine.on_packet(clean)
    assert clean.verdict == "accept" and clean.mark == 0  # passes, undecided (awaits reply)
    hit = FakeQueuedPacket(_http_request("ok.test", "?q=falun"))
    hit.raw = hit.raw[:22] + struct.pack("!H", 40001) + hit.raw[24:]  # another flow
    engine.on_packet(hit)
    assert hit.mark == verdicts.mark(verdicts.DROP)
    assert engine.stats["decided"] == 1


def test_http_filter_keyword_in_names_where_keywords_count() -> None:
    """Rambert et al. (WWW 2021): the GFW looks at the path and the Host header, not at
    Cookie headers or a POST body; the default still searches the whole request."""
    from censor_sims.techniques.http_filter import request_parts

    request = b"POST /p?q=a HTTP/1.1\r\nHost: b.test\r\nCookie: c=1\r\n\r\nbody=d"
    assert request_parts(request) == {"path": b"/p?q=a", "host": b"b.test",
                                      "headers": b"Cookie: c=1", "body": b"body=d"}  # fmt: skip
    gfw = HttpFilter(keywords=["falun"], keyword_in=["path", "host"])
    everywhere = HttpFilter(keywords=["falun"])
    for part, request in (
        ("path", b"GET /falun HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("host", b"GET / HTTP/1.1\r\nHost: falun.x\r\n\r\n"),
        ("headers", b"GET / HTTP/1.1\r\nHost: x\r\nCookie: q=falun\r\n\r\n"),
        ("body", b"POST / HTTP/1.1\r\nHost: x\r\n\r\nq=falun"),
    ):
        assert (
            everywhere._rule(None, request)
            == f"http request contains keyword 'falun' (in the {part})"
        )
        assert (gfw._rule(None, request) is not None) == (part in ("path", "host")), part


def test_a_penalty_box_with_a_share_blocks_that_share_of_later_connections(tmp_path) -> None:
    """residual_share: each later connection on the 3-tuple is blocked with that probability
    (GFW HTTP: 50-75 %, Rambert et al. WWW 2021); 1.0 blocks all, as before."""
    import random

    random.seed(7)
    results = {}
    for share in (1.0, 0.6):
        box = HttpFilter(keywords=["falun"], residual=60, residual_share=share)
        engine = Engine([box], EventLog(tmp_path / f"e{share}.jsonl"), sender=RecordingSender())
        engine.on_packet(FakeQueuedPacket(_http_request("ok.test", "?q=falun")))
        blocked = 0
        for port in range(41000, 41400):  # later connections: a SYN each
            syn = build_tcp(CLIENT, SERVER, port, 80, 1, 0, 0x02, window=512)
            pkt = FakeQueuedPacket(syn)
            engine.on_packet(pkt)
            blocked += pkt.mark == verdicts.mark(verdicts.DROP)
        results[share] = blocked
    assert results[1.0] == 400
    assert 0.5 * 400 < results[0.6] < 0.7 * 400, results


def test_dns_poison_inject_fingerprint(tmp_path) -> None:
    sender = RecordingSender()
    poison = DnsPoison(names=["x.test"], answer="198.51.100.7", count=3, ttl=77, ip_ttl=47,
                       ip_id=0x1234, aa=False)  # fmt: skip
    engine = Engine([poison], EventLog(tmp_path / "e.jsonl"), sender=sender)
    query = DNSRecord.question("www.x.test", "A").pack()
    engine.on_packet(FakeQueuedPacket(build_udp(CLIENT, "10.77.0.181", 33000, 53, query)))
    assert len(sender.sent) == 3
    for i, raw in enumerate(sender.sent):
        pkt = parse(raw)
        assert (pkt.ttl, pkt.ip_id, pkt.sport, pkt.dport) == (47, 0x1234 + i, 53, 33000)
        reply = DNSRecord.parse(pkt.payload)
        assert reply.header.aa == 0 and reply.header.ra == 1
        assert str(reply.rr[0].rdata) == "198.51.100.7" and reply.rr[0].ttl == 77


def test_dns_poison_answers_every_query_of_a_reused_port(tmp_path) -> None:
    """dnsmasq 2.90 sends later queries from a port it used before: one flow to the engine.
    An on-path injector answers each matching query, not just the flow's first (CI saw one
    of nine names resolve truly when the engine remembered the flow as decided)."""
    sender = RecordingSender()
    engine = Engine([DnsPoison(names=["x.test"])], EventLog(tmp_path / "e.jsonl"), sender=sender)
    server = "10.77.0.181"
    for name in ("a.x.test", "other.test", "b.x.test", "c.x.test"):
        query = DNSRecord.question(name, "A")
        engine.on_packet(FakeQueuedPacket(build_udp(CLIENT, server, 33000, 53, query.pack())))
        answer = query.reply().pack()
        engine.on_packet(FakeQueuedPacket(build_udp(server, CLIENT, 53, 33000, answer)))
    forged = [str(DNSRecord.parse(parse(raw).payload).q.qname) for raw in sender.sent]
    assert forged == ["a.x.test.", "b.x.test.", "c.x.test."]


def test_dns_poison_resolver_options() -> None:
    nx = DnsPoison(mode="resolver", lie="nxdomain", names=["a.test."])
    sink = DnsPoison(mode="resolver", lie="sinkhole", names=["b.test"])
    bogus = DnsPoison(mode="resolver", names=["c.test"], answer="203.0.113.9")
    plan = _compile(nx, sink, bogus)
    assert not plan.engine and not plan.rules and not any(t.userspace for t in (nx, sink, bogus))
    assert nx._lies == ["--address=/a.test/"]
    assert sink._lies == ["--address=/b.test/10.77.0.1"]
    assert bogus._lies == ["--address=/c.test/203.0.113.9"]
    assert TCP  # the module's constants stay importable for the engine
