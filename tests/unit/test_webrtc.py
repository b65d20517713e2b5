"""The `webrtc` app's parts that need no namespaces: ICE attempt plans, coturn's config,
merging both agents' reports into a TrialResult, scenario options, the missing-binary error,
and the caller's event loop sending TCP + TLS through a real SOCKS5 server (microsocks) on
loopback. The calls themselves: tests/e2e/test_webrtc.py."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from harness.apps.webrtc import coturn, ice
from harness.apps.webrtc.app import WebRtcApp, merge_call, webrtc_metrics
from harness.apps.webrtc.netpath import new_loop
from harness.net.socks5 import ProxyAddress
from harness.pki import make_ca
from harness.programs import MissingProgram
from harness.registry import app_plugin
from harness.results import TrialResult
from harness.runner import Runner
from harness.scenario import ScenarioError, parse_scenario
from harness.scoring.emodel import score_call


def test_policy_all_tries_udp_then_turn_tls_443_then_turn_tcp() -> None:
    plan = ice.attempts("all", "10.0.0.1")
    assert [a.name for a in plan] == ["udp", "tls", "tcp"]
    assert plan[0].turn_url == "turn:10.0.0.1:3478?transport=udp"
    assert plan[0].stun_url == "stun:10.0.0.1:3478"
    assert plan[1].turn_url == "turns:10.0.0.1:443?transport=tcp"
    assert plan[2].turn_url == "turn:10.0.0.1:3478?transport=tcp"
    assert not any(a.relay_only for a in plan)


@pytest.mark.parametrize(
    ("policy", "name", "relay_only"),
    [("udp-only", "udp", False), ("relay", "udp", True), ("relay-tcp", "tcp", True),
     ("relay-tls", "tls", True)],
)  # fmt: skip
def test_single_attempt_policies(policy: str, name: str, relay_only: bool) -> None:
    (attempt,) = ice.attempts(policy, "10.0.0.1")
    assert (attempt.name, attempt.relay_only) == (name, relay_only)
    config = attempt.configuration("u", "p")
    assert config.iceTransportPolicy.value == ("relay" if relay_only else "all")
    assert config.iceServers[0].urls == attempt.turn_url  # aiortc: first only


def test_unknown_policy_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="valid: all, udp-only, relay, relay-tcp, relay-tls"):
        ice.attempts("udp", "10.0.0.1")


def test_callee_gets_no_public_stun_server() -> None:
    assert ice.peer_configuration().iceServers == []  # None would mean Google's STUN


def test_coturn_config_has_the_three_listeners_and_credentials(tmp_path: Path) -> None:
    cfg = coturn.TurnConfig(tmp_path, "10.1.2.3", "u", "secret", tmp_path / "c", tmp_path / "k")
    text = coturn.turnserver_config(cfg)
    for line in ("listening-ip=10.1.2.3", "relay-ip=10.1.2.3", "listening-port=3478",
                 "tls-listening-port=443", "lt-cred-mech", "user=u:secret", "no-cli",
                 "log-file=stdout", f"cert={tmp_path / 'c'}", f"pidfile={tmp_path}"):  # fmt: skip
        assert any(x.startswith(line) for x in text.splitlines()), line


def test_missing_coturn_names_the_package(tmp_path: Path, monkeypatch) -> None:
    scenario = parse_scenario("name: t\napps: [webrtc]\ntools: [direct]\ncensors: {open: []}\n")
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no turnserver
    with pytest.raises(MissingProgram, match=r"turnserver not found.*Debian package 'coturn'"):
        Runner(scenario, tmp_path / "out").preflight()
    assert not (tmp_path / "out").exists()


def test_scenario_options_and_bad_policy() -> None:
    base = "name: t\napps: [webrtc]\ntools: [direct]\ncensors: {open: []}\n"
    s = parse_scenario(base + "webrtc: {ice_policy: relay-tls, codec: pcmu}\n")
    assert (s.webrtc.ice_policy, s.webrtc.codec) == ("relay-tls", "pcmu")
    with pytest.raises(ScenarioError) as info:
        parse_scenario(base + "webrtc: {ice_policy: tls}\n", "w.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("w.yaml:5:10: webrtc.ice_policy: 'tls' is not allowed")
    assert "'relay-tls'" in problem
    with pytest.raises(ScenarioError, match="signalling_host: 'voip' is not allowed"):
        parse_scenario(base + "webrtc: {signalling_host: voip}\n")  # coturn has 443 there


CALLER = {
    "signalling_ok": True, "signalling_ms": 12.0, "setup_ok": True, "answer_ms": 30.0,
    "media_s": 2.0, "winner": "tls", "dtls_done": True, "connected_ms": 500.0,
    "rtp_sent": 100, "rx": {"received": 98, "lost": 1, "expected": 99, "jitter_ms": 1.5},
    "owd": {"mean_ms": 40.0, "p95_ms": 60.0},
    "attempts": [{"name": "udp", "outcome": "timeout", "ms": 8000.0},
                 {"name": "tls", "outcome": "connected", "ms": 600.0}],
    "selected_pair": {"local_type": "relay", "local_transport": "tls",
                      "local_address": "10.0.0.1:49200", "remote_type": "host",
                      "remote_address": "10.0.0.2:5000"},
    "via_proxy": [],
}  # fmt: skip
CALLEE = {"rtp_sent": 100, "rx": {"received": 95, "lost": 5, "expected": 100, "jitter_ms": 2.0},
          "owd": {"mean_ms": 50.0, "p95_ms": 70.0}}  # fmt: skip


def test_merge_scores_the_worse_direction_with_loss_against_packets_sent() -> None:
    call = merge_call(CALLER, CALLEE, "opus")
    assert call.up.loss_pct == 5.0 and call.down.loss_pct == 2.0  # sent 100 each way
    assert call.up.owd_ms_mean == 50.0 and call.down.jitter_ms == 1.5
    r, mos = score_call(5.0, 1.0, 50.0, "opus-nb-research")
    assert (call.r_factor, call.mos) == (round(r, 3), round(mos, 3))
    assert call.codec == "opus-nb-research" and call.transport == "tls"
    assert call.pdd_ms == 30.0 and call.setup_ms == 8500.0  # the failed UDP attempt counts


def test_metrics_say_the_opus_values_are_research_values() -> None:
    w = webrtc_metrics(CALLER, "all", "opus")
    assert w.emodel_research_values and w.emodel_codec_source.startswith("research value")
    assert w.time_to_connected_ms == 8500.0  # the failed UDP attempt counts
    assert (w.selected_pair.local_type, w.selected_pair.local_transport) == ("relay", "tls")
    g711 = webrtc_metrics(CALLER, "all", "pcmu")
    assert not g711.emodel_research_values and "ITU-T G.113" in g711.emodel_codec_source


def test_no_connection_means_no_media_figures() -> None:
    caller = {**CALLER, "winner": None, "dtls_done": False, "connected_ms": None}
    caller["attempts"] = [{"name": "udp", "outcome": "timeout", "ms": 8000.0}]
    call = merge_call(caller, {}, "opus")
    assert call.setup_ok and call.up is None and call.mos is None and call.setup_ms is None
    assert webrtc_metrics(caller, "udp-only", "opus").ice_result == "timeout"
    result = TrialResult(run_id="r", scenario="s", censor="c", tool="t", app="webrtc",
                         trial=0, started_at="x", call=call,
                         webrtc=webrtc_metrics(caller, "udp-only", "opus"))  # fmt: skip
    assert TrialResult.model_validate_json(result.model_dump_json()) == result


def test_app_declares_coturn() -> None:
    assert WebRtcApp.binaries == {"turnserver": "coturn"} and app_plugin("webrtc").kind == "call"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_caller_loop_sends_tcp_and_tls_through_socks5(tmp_path: Path) -> None:
    """aioice's `create_connection(host, port, ssl=True)` reaches a TLS server via a real
    SOCKS5 server, verified against the run CA (IP in the SAN, as for TURN/TLS)."""
    ca = make_ca(tmp_path / "pki")
    cert, key = ca.issue("srv", [], ["127.0.0.1"], out_dir=tmp_path)
    socks_port, tls_port = _free_port(), _free_port()
    proxy = subprocess.Popen(["microsocks", "-i", "127.0.0.1", "-p", str(socks_port)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:

        async def main() -> bytes:
            server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            server_ctx.load_cert_chain(cert, key)

            async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.write(await reader.read(100))
                await writer.drain()
                writer.close()

            server = await asyncio.start_server(echo, "127.0.0.1", tls_port, ssl=server_ctx)
            for _ in range(50):  # microsocks up
                try:
                    socket.create_connection(("127.0.0.1", socks_port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.02)
            loop = asyncio.get_running_loop()
            got: asyncio.Future[bytes] = loop.create_future()

            class Client(asyncio.Protocol):
                def data_received(self, data: bytes) -> None:
                    if not got.done():
                        got.set_result(data)

            transport, _ = await loop.create_connection(Client, "127.0.0.1", tls_port, ssl=True)
            transport.write(b"hello")
            data = await asyncio.wait_for(got, 5)
            transport.close()
            server.close()
            return data

        loop = new_loop(ProxyAddress("127.0.0.1", socks_port), str(ca.cert_path))
        with asyncio.Runner(loop_factory=lambda: loop) as runner:
            assert runner.run(main()) == b"hello"
        assert loop.via == [f"127.0.0.1:{tls_port}"]
    finally:
        proxy.terminate()
        proxy.wait(5)


def test_port_block_invert_is_one_inverted_match_per_leg() -> None:
    """`all UDP but DNS`: iptables-nft 1.8.9 turns `! --sport 53 ! --dport 53` into one
    compare of the port pair (dropping DNS too), so the inverted form is one match."""
    from censor_sims.kernel import iptables_restore_text
    from censor_sims.technique import CensorContext, KernelPlan
    from censor_sims.techniques.port_block import PortBlock
    from harness.topology.addressing import AddressPool

    plan = KernelPlan()
    PortBlock(proto="udp", ports=[53], invert=True).compile(
        CensorContext(AddressPool().acquire().as_dict()), plan
    )
    lines = iptables_restore_text(plan).splitlines()
    rules = [x for x in lines if x.startswith("-A")]
    assert len(rules) == 2
    assert "-i inside -o outside -p udp -m multiport ! --dports 53 " in rules[0]
    assert "-i outside -o inside -p udp -m multiport ! --sports 53 " in rules[1]
    assert all(" -j DROP" in r for r in rules)
    plain = KernelPlan()
    PortBlock(proto="udp", ports=[5060]).compile(
        CensorContext(AddressPool().acquire().as_dict()), plain
    )
    assert "!" not in iptables_restore_text(plain)


def _decoded_through_aiortc(lost: set[int], n: int) -> list[int]:
    """Encode n 20 ms Opus frames with aiortc's encoder, pass the packets not in `lost`
    through aiortc's audio jitter buffer (as its receiver does) and decoder, and return the
    decoded frames' pts (the RTP timestamps)."""
    import fractions

    from aiortc.codecs import get_decoder, get_encoder
    from aiortc.jitterbuffer import JitterBuffer
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from aiortc.rtp import RtpPacket
    from av import AudioFrame

    codec = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2)
    encoder, decoder = get_encoder(codec), get_decoder(codec)
    buffer = JitterBuffer(capacity=16, prefetch=4)  # what aiortc's receiver uses for audio
    pts: list[int] = []
    for seq in range(n):
        frame = AudioFrame(format="s16", layout="mono", samples=960)
        frame.planes[0].update(bytes(1920))
        frame.sample_rate, frame.pts = 48000, seq * 960
        frame.time_base = fractions.Fraction(1, 48000)
        payload = encoder.encode(frame)[0][0]
        if seq in lost:
            continue
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960)
        packet._data = payload  # what the receiver's depacketizer sets
        ready = buffer.add(packet)[1]
        if ready is not None:
            pts += [f.pts for f in decoder.decode(ready)]
    return pts


def test_aiortc_jitter_buffer_widens_each_hole_so_the_pattern_is_taken_before_it() -> None:
    """Why RtpTap exists: out of aiortc's audio jitter buffer and decoder, a lost packet
    also takes the frames queued in front of it (prefetch), so decoded frames overstate
    loss bursts."""
    lost = {10, 11, 12, 13, 30, 50, 51}
    step = 48000 // 50
    decoded = {pts // step for pts in _decoded_through_aiortc(lost, 80)}
    missing = set(range(max(decoded))) - decoded
    assert lost < missing and len(missing) > len(lost)


def test_rtp_tap_reads_the_loss_pattern_from_a_real_aiortc_receiver() -> None:
    """The tap wraps a real RTCRtpReceiver's packet handler, called the way aiortc's DTLS
    transport calls it; the receiver still gets every packet."""
    import inspect

    from aiortc import RTCCertificate, RTCDtlsTransport, RTCIceGatherer, RTCIceTransport
    from aiortc.rtcrtpreceiver import RTCRtpReceiver
    from aiortc.rtp import RtpPacket

    from harness.apps.webrtc.media import RtpTap
    from harness.media.rtpstats import burst_ratio, gilbert_fit

    assert "arrival_time_ms" in inspect.signature(RTCRtpReceiver._handle_rtp_packet).parameters
    lost = {10, 11, 12, 13, 30, 50, 51}

    async def feed() -> tuple[RtpTap, list[int]]:
        dtls = RTCDtlsTransport(
            RTCIceTransport(RTCIceGatherer()), [RTCCertificate.generateCertificate()]
        )
        receiver = RTCRtpReceiver("audio", dtls)
        handled: list[int] = []
        original = receiver._handle_rtp_packet

        async def count(packet, arrival_time_ms: int) -> None:
            handled.append(packet.sequence_number)
            await original(packet, arrival_time_ms=arrival_time_ms)

        receiver._handle_rtp_packet = count
        tap = RtpTap(48000)
        tap.attach(receiver)
        for seq in range(80):
            if seq not in lost:
                packet = RtpPacket(payload_type=111, sequence_number=(65530 + seq) % 65536,
                                   timestamp=(seq * 960) % (1 << 32), ssrc=1)  # fmt: skip
                await receiver._handle_rtp_packet(packet, arrival_time_ms=seq * 20)
        return tap, handled

    tap, handled = asyncio.run(feed())
    assert len(handled) == 80 - len(lost)
    pattern = [i not in lost for i in range(80)]
    assert tap.summary() == {
        "burst_r": round(burst_ratio(*gilbert_fit(pattern)), 4),
        "mean_burst_len": round(7 / 3, 3),
    }
    assert tap.summary()["burst_r"] > 1.0  # runs of 4, 1 and 2: burstier than random
