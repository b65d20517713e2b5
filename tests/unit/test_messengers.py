"""Messenger profiles without a topology: their wire formats against the censor's analyzers,
a real exchange over loopback TCP for each profile, and the scenario errors for bad names
and options."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from argparse import Namespace
from pathlib import Path
from typing import Any

import pytest

from censor_sims.analyzers import FlowInfo, classify
from censor_sims.analyzers.base import recognised
from censor_sims.analyzers.mtproto import decrypt_tag, preamble_allowed
from censor_sims.analyzers.whatsapp import parse_intro
from harness.apps.messengers import telegram_like, whatsapp_like
from harness.apps.messengers.agent import build_parser, client, profile_module, run_server
from harness.apps.messengers.session import ClientPlan, run_client
from harness.pki import make_ca
from harness.registry import app_class, app_plugin
from harness.scenario import ScenarioError, load_scenario, parse_scenario
from harness.topology.addressing import TrialAddresses
from harness.topology.netns import NetnsTopology
from harness.topology.process import Supervisor
from harness.trial import TrialContext

REPO = Path(__file__).resolve().parents[2]
PROFILES = ("signal-like", "whatsapp-like", "telegram-like")

BASE = """\
name: m
trials: 1
apps: [signal-like, whatsapp-like, telegram-like]
tools: [direct]
censors:
  open: []
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "m.yaml")
    return info.value.problems


def test_profiles_are_registered_message_apps() -> None:
    for name in PROFILES:
        plugin = app_plugin(name)
        assert plugin.load().name == name and plugin.kind == "message"
        assert profile_module(name).__doc__.count("Source") >= 1  # cites its source


def test_unknown_app_names_line_and_lists_profiles() -> None:
    (msg,) = problems(BASE.replace("whatsapp-like", "whatsap-like"))
    assert msg.startswith("m.yaml:3:"), msg
    assert "unknown app 'whatsap-like'" in msg
    for name in (*PROFILES, "sip", "xmpp"):
        assert name in msg


def test_bad_profile_option_names_line_and_choices() -> None:
    (msg,) = problems(BASE + "whatsapp_like: {port: 8080}\n")
    assert msg.startswith("m.yaml:7:") and "whatsapp_like.port" in msg, msg
    assert "443" in msg and "5222" in msg
    (msg,) = problems(BASE + "telegram_like: {framing: full}\n")
    assert "'intermediate'" in msg and "'abridged'" in msg, msg
    (msg,) = problems(BASE + "signal_like: {sni: x}\n")
    assert "unknown key 'sni'" in msg and "server_name" in msg, msg


def test_shipped_messengers_scenario_validates() -> None:
    s = load_scenario(REPO / "scenarios" / "messengers.yaml")
    assert set(PROFILES) <= set(s.apps)
    assert s.whatsapp_like.port == 5222


def test_whatsapp_first_bytes_are_the_wa_prologue_and_a_client_hello() -> None:
    hello = whatsapp_like.client_hello(whatsapp_like._noise(initiator=True))
    assert hello[:4] == bytes([87, 65, 6, 3])
    props = parse_intro(hello)
    assert props and props["version"] == "6.3" and props["client_hello"], props
    assert props["frame_length"] == len(hello) - 7


def test_protobuf_fields_round_trip() -> None:
    data = whatsapp_like.pb_fields(f1=b"a" * 200, f3=b"")
    assert whatsapp_like.pb_parse(data) == {1: b"a" * 200, 3: b""}
    with pytest.raises(ValueError):
        whatsapp_like.pb_parse(b"\x08\x01")  # a varint field


def test_obfuscated2_preambles_keep_tdlib_rules_and_decrypt() -> None:
    for _ in range(2000):
        wire, _, _ = telegram_like.make_preamble("abridged", -3)
        assert len(wire) == 64 and preamble_allowed(wire)
        assert decrypt_tag(wire) == ("abridged", -3)


def _profile_args(profile: str, tmp: Path, port: int) -> tuple[Namespace, Namespace]:
    ca = make_ca(tmp / "ca")
    cert, key = ca.issue("chat", ["chat.gatecrash.test"], ["127.0.0.1"], out_dir=tmp)
    server = build_parser().parse_args(
        ["server", "--profile", profile, "--listen", "127.0.0.1", "--port", str(port),
         "--cert", str(cert), "--key", str(key)]
    )  # fmt: skip
    cli = build_parser().parse_args(
        ["client", "--profile", profile, "--server", "127.0.0.1", "--port", str(port),
         "--sni", "chat.gatecrash.test", "--ca", str(ca.cert_path), "--count", "4",
         "--interval-ms", "5", "--timeout", "3"]
    )  # fmt: skip
    return server, cli


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("profile", PROFILES)
def test_loopback_exchange_delivers_and_is_recognised(profile: str, tmp_path: Path) -> None:
    """A real server and client of the profile over loopback TCP; the client's bytes, read
    off the server's side of the socket, go through the analyzers."""
    port = _free_port()
    server_args, client_args = _profile_args(profile, tmp_path, port)
    first: list[bytes] = []

    async def go() -> dict[str, Any]:
        task = asyncio.create_task(run_server(server_args))
        for _ in range(100):
            await asyncio.sleep(0.02)
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                continue
        # A tap between client and server that keeps the client's first segment.
        tap_port = _free_port()

        async def relay(reader, writer) -> None:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)

            async def pipe(src, dst, keep: bool) -> None:
                while data := await src.read(65536):
                    if keep and not first:
                        first.append(data)
                    dst.write(data)
                    await dst.drain()
                dst.close()

            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await asyncio.gather(pipe(reader, up_w, True), pipe(up_r, writer, False))

        tap = await asyncio.start_server(relay, "127.0.0.1", tap_port)
        client_args.port = tap_port
        result = await client(client_args)
        tap.close()
        task.cancel()
        return result

    result = asyncio.run(go())
    assert result["outcome"] == "ok" and result["connected"], result
    assert result["sent"] == result["delivered"] == 4, result
    props = classify(["tls", "whatsapp", "mtproto"], FlowInfo("tcp", "127.0.0.1", 1, "127.0.0.1",
                     port), [(False, first[0])])  # fmt: skip
    sni = props.get("tls", {}).get("sni")
    assert (sni == "chat.gatecrash.test") == (profile == "signal-like"), props
    assert recognised("whatsapp", props.get("whatsapp", {})) == (profile == "whatsapp-like")
    assert recognised("mtproto", props.get("mtproto", {})) == (profile == "telegram-like")


def test_refused_and_silent_servers_are_classified(tmp_path: Path) -> None:
    port = _free_port()
    plan = ClientPlan("127.0.0.1", port, None, None, 1, 0, 1.0)
    handshake = telegram_like.client_handshake
    result = asyncio.run(run_client(plan, lambda s: handshake(s, Namespace(framing="abridged",
                                                                          dc=1))))  # fmt: skip
    assert result["outcome"] == "refused" and not result["connected"], result

    async def silent() -> dict[str, Any]:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", port)
        async with server:
            return await run_client(
                plan, lambda s: handshake(s, Namespace(framing="abridged", dc=1))
            )

    result = asyncio.run(silent())
    assert result["outcome"] == "timeout" and "handshake" in result["error"], result


def test_signal_like_client_needs_the_ca() -> None:
    with pytest.raises(SystemExit):
        from harness.apps.messengers.agent import main

        main(["client", "--profile", "signal-like", "--server", "x", "--port", "443"])


def test_signal_like_wrong_ca_is_tls_alert_and_early_close_is_reset(tmp_path: Path) -> None:
    port = _free_port()
    server_args, client_args = _profile_args("signal-like", tmp_path, port)
    client_args.ca = str(make_ca(tmp_path / "other").cert_path)

    async def go() -> dict[str, Any]:
        task = asyncio.create_task(run_server(server_args))
        await asyncio.sleep(0.3)
        result = await client(client_args)
        task.cancel()
        return result

    result = asyncio.run(go())
    assert result["outcome"] == "tls-alert", result
    assert "CERTIFICATE_VERIFY_FAILED" in result["error"]

    client_args.port = _free_port()

    async def hang_up() -> dict[str, Any]:
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", client_args.port)
        async with server:
            return await client(client_args)

    result = asyncio.run(hang_up())
    assert result["outcome"] == "reset" and "handshake" in result["error"], result


def _context(tmp: Path, options: str) -> TrialContext:
    scenario = parse_scenario(BASE + options)
    addresses = TrialAddresses(ipaddress.IPv4Network("10.77.5.0/24"))
    topology = NetnsTopology("unit", 0, addresses, tmp)  # never brought up: addresses only
    return TrialContext(scenario, "open", "direct", "x", 0, topology, Supervisor(tmp / "logs"),
                        tmp, make_ca(tmp / "ca"))  # fmt: skip


def test_how_each_profile_finds_its_server(tmp_path: Path) -> None:
    ctx = _context(tmp_path, "")
    chat, resolver = ctx.topology.addr("chat"), ctx.topology.addr("resolver")
    signal = app_class("signal-like")().client_args(ctx)
    assert signal[:4] == ["--server", "chat.gatecrash.test", "--resolver", resolver], signal
    assert signal[signal.index("--sni") + 1] == "chat.gatecrash.test"
    whatsapp = app_class("whatsapp-like")().client_args(ctx)
    assert whatsapp == ["--server", "chat.gatecrash.test", "--resolver", resolver]
    telegram = app_class("telegram-like")().client_args(ctx)
    assert telegram[:2] == ["--server", chat] and "--resolver" not in telegram  # no DNS

    other = _context(tmp_path / "o", "signal_like: {server_name: chat.signal.example}\n")
    signal = app_class("signal-like")().client_args(other)
    assert signal[:2] == ["--server", chat] and "--resolver" not in signal
    assert signal[signal.index("--sni") + 1] == "chat.signal.example"
