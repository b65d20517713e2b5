"""The analyzers on recorded traffic: dumpcap records the censor's legs while real programs
talk (a SIP call through Kamailio made by the harness's `sip` app, its DNS lookup through the
run's resolver; curl doing a TLS handshake with openssl s_server); the pcapng is read back
packet by packet and each flow's payloads go through `classify`, as the engine would see
them. SIP, RTP, TLS (with its SNI) and DNS must come out as what they are."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from censor_sims.analyzers import FlowInfo, classify
from censor_sims.capture import start_capture, stop_capture
from censor_sims.engine.packet import TCP, parse
from harness.pki import make_ca

pytestmark = pytest.mark.e2e

ANALYZERS = ["sip", "rtp", "stun", "tls", "dns", "http", "fet"]
INSIDE_LEG = 0  # capture.py starts dumpcap on the inside leg first
Flow = tuple[str, str, int, str, int]


def read_pcapng(path: Path, interface: int = INSIDE_LEG) -> list[bytes]:
    """IPv4 packets (Ethernet stripped) captured on one interface, in capture order."""
    data, packets, pos, endian = path.read_bytes(), [], 0, "<"
    while pos + 12 <= len(data):
        btype = struct.unpack_from(endian + "I", data, pos)[0]
        if btype == 0x0A0D0D0A:  # section header: its byte-order magic sets the endianness
            endian = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        length = struct.unpack_from(endian + "I", data, pos + 4)[0]
        if btype == 6:  # enhanced packet block
            iface, _, _, caplen = struct.unpack_from(endian + "IIII", data, pos + 8)
            frame = data[pos + 28 : pos + 28 + caplen]
            if iface == interface and frame[12:14] == b"\x08\x00":
                packets.append(frame[14:])
        pos += length
    return packets


def flows_of(packets: list[bytes]) -> dict[Flow, tuple[FlowInfo, list[tuple[bool, bytes]]]]:
    """Group packets into flows the way the engine does: the first sender is the client."""
    flows: dict[Flow, tuple[FlowInfo, list[tuple[bool, bytes]]]] = {}
    for raw in packets:
        pkt = parse(raw)
        if pkt is None:
            continue
        proto = "tcp" if pkt.proto == TCP else "udp"
        fwd: Flow = (proto, pkt.src, pkt.sport, pkt.dst, pkt.dport)
        rev: Flow = (proto, pkt.dst, pkt.dport, pkt.src, pkt.sport)
        if rev in flows:
            key, is_rev = rev, True
        else:
            key, is_rev = fwd, False
            if fwd not in flows:
                flows[fwd] = (FlowInfo(*fwd), [])  # type: ignore[arg-type]
        if pkt.payload:
            flows[key][1].append((is_rev, pkt.payload))
    return flows


def classified(pcap: Path) -> dict[Flow, dict]:
    return {key: classify(ANALYZERS, info, payloads)
            for key, (info, payloads) in flows_of(read_pcapng(pcap)).items()}  # fmt: skip


def test_recorded_kamailio_call_classifies_as_sip_rtp_and_dns(tmp_path) -> None:
    from harness.runner import Runner
    from harness.scenario import parse_scenario

    scenario = parse_scenario(
        "name: recorded\ntrials: 1\ncall_seconds: 1\ncapture: true\napps: [sip]\n"
        "tools: [direct]\ncensors: {none: []}\n"
    )
    (result,) = Runner(scenario, tmp_path).run()
    assert result.outcome == "ok", result.error
    pcap = Path(result.logs["pcap"])
    props = classified(pcap)

    sip = [(k, p) for k, p in props.items() if "method" in p.get("sip", {})]
    assert sip and all(k[4] == 5060 for k, _ in sip), props  # to Kamailio's port
    # SIP over UDP: one flow carries the whole dialogue; message by message, it is all there
    flows = flows_of(read_pcapng(pcap))
    seen = [classify(["sip"], flows[k][0], [message]).get("sip", {})
            for k, _ in sip for message in flows[k][1]]  # fmt: skip
    assert {m.get("method") for m in seen} >= {"REGISTER", "INVITE", "ACK", "BYE"}, seen
    assert 200 in {m.get("status") for m in seen}, seen
    rtp = [k for k, p in props.items() if p.get("rtp", {}).get("yes")]
    assert rtp and all(k[0] == "udp" and k[4] != 5060 for k in rtp)
    assert not any(p.get("rtp", {}).get("yes") for k, p in sip)
    dns = [p["dns"] for p in props.values() if p.get("dns", {}).get("qname")]
    assert any(d["qname"].rstrip(".") == "voip.gatecrash.test" for d in dns), dns
    # nothing here is TLS, and no SIP or RTP flow looks fully encrypted
    assert not any(p.get("tls", {}).get("sni") for p in props.values())


def test_recorded_tls_handshake_classifies_with_its_sni(topology, supervisor, tmp_path) -> None:
    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue("front", ["news.example.test"], [topology.addr("front")])
    server = supervisor.start(topology["front"], "s_server",
                              ["openssl", "s_server", "-accept", "443", "-cert", str(cert),
                               "-key", str(key), "-www", "-quiet"])  # fmt: skip
    server.wait_until(lambda: topology["front"].listening(443), 5, "port 443")
    pcap = tmp_path / "censor.pcapng"
    dumpcap = start_capture(topology["censor"], supervisor, pcap)
    front = topology.addr("front")
    curl = topology["client"].run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5", "--cacert",
         str(ca.cert_path), "--resolve", f"news.example.test:443:{front}",
         "https://news.example.test/"], check=False)  # fmt: skip
    dig = topology["client"].run(["dig", "+tries=1", "+time=1", f"@{front}", "probe.example.test",
                                  "AAAA"], check=False)  # fmt: skip
    stop_capture(dumpcap)
    assert curl.stdout == "200", curl
    props = classified(pcap)

    (tls,) = [(k, p["tls"]) for k, p in props.items() if p.get("tls", {}).get("sni")]
    assert tls[0][0] == "tcp" and tls[0][3:] == (front, 443)
    assert tls[1]["sni"] == "news.example.test"
    assert not props[tls[0]].get("fet", {}).get("yes")  # TLS is exempt from FET
    (query,) = [p["dns"] for p in props.values() if p.get("dns", {}).get("qname")]
    assert query["qname"].rstrip(".") == "probe.example.test" and query["qtype"] == "AAAA"
    assert dig.returncode != 0  # nobody answers DNS on front: the query alone is classified
