"""The GFW's active probing of Shadowsocks, reproduced with the `active_probe` technique
against the real shadowsocks-libev server (ss-server 3.3.5, chacha20-ietf-poly1305) that
gatecrash's `shadowsocks` tool runs, triggered by a real connection through ss-local.

Alice, Bob, Carol, Beznazwy, Houmansadr: "How China Detects and Blocks Shadowsocks", IMC
2020 (gfw.report). Published behaviour checked here:
  - the GFW replays a legitimate connection's first data packet, and sends random probes
    whose lengths cluster around 8, 12, 16, 22, 33, 41 and 50 bytes, plus 221 bytes (as the
    active_probe technique recalls the paper's length sets; not re-checked offline);
  - a server without replay protection answers a replay with data and is identified;
    shadowsocks-libev added a replay filter (3.3.1) after the paper's disclosure, so 3.3.5
    must not answer replays with data;
  - an AEAD server reads salt (32 bytes for chacha20-ietf-poly1305) + 2-byte length + 16-byte
    tag = 50 bytes before it can fail authentication: silent below 50 bytes, closing at 50 and
    above. That length threshold is the fingerprint the paper (and Frolov et al., NDSS 2020)
    describe, and what the censor's `length_threshold` criterion keys on.
Quick mode waits 2 s per probe, full mode 5 s (a "timeout" is silence for that long).

Finding (measured, not tuned away): ss-server 3.3.5 stays silent on every probe, 221 bytes
included: it no longer closes when authentication fails, so the length threshold the paper
describes for the shadowsocks servers of the time does not show, the censor's criteria do
not identify it, and it is not blocked. The two rows about the threshold and the verdict
therefore do not agree; they describe the server gatecrash ships, which is good news for
the tool, not a flaw of the censor.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

from censor_sims.techniques.active_probe import ActiveProbe
from harness.reproduce.core import CaseReport, Measured, Published, Row
from harness.reproduce.lab import PY, Lab

NAME = "gfw-shadowsocks-probing-2020"
TITLE = "GFW active probing of Shadowsocks (Alice et al., IMC 2020)"
PAPER = "Alice et al., IMC 2020"
SS_PORT, ECHO_PORT = 8388, 7000
SHORT = [8, 12, 16, 22, 33, 41, 49]
LONG = [50, 221]
AEAD_THRESHOLD = 50  # salt 32 + length 2 + tag 16 (chacha20-ietf-poly1305)
FINDING_SILENT = (
    "finding: ss-server 3.3.5 stays silent on every probe (no close on authentication "
    "failure), so the published length-threshold reaction of the servers of the time does "
    "not show and the censor cannot identify it"
)


def _wait_verdict(lab: Lab, server: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in lab.events("probe-verdict"):
            if e["server"] == server:
                time.sleep(0.2)  # the block (if any) follows the verdict
                return e
        time.sleep(0.1)
    raise RuntimeError(f"no probe verdict for {server} within {timeout:.0f} s")


def run(quick: bool, workdir: Path) -> CaseReport:
    wait = 2.0 if quick else 5.0
    probe = ActiveProbe(name="gfw-probe", delay=0.2, timeout=wait, replays=2,
                        random_lengths=[*SHORT, *LONG],
                        criteria=["replay_data", "length_threshold"], block=60)  # fmt: skip
    report = CaseReport(NAME, TITLE, "quick" if quick else "full",
                        {"server": "shadowsocks-libev 3.3.5 chacha20-ietf-poly1305",
                         "probe_timeout_s": wait, "random_lengths": [*SHORT, *LONG],
                         "replays": 2})  # fmt: skip
    password = secrets.token_hex(8)
    common = ["-k", password, "-m", "chacha20-ietf-poly1305"]
    with Lab(workdir) as lab:
        server = lab.supervisor.start(lab.topology["proxy"], "ss-server",
                                      ["ss-server", "-s", lab.addr("proxy"), "-p", str(SS_PORT),
                                       "-v", *common])  # fmt: skip
        local = lab.supervisor.start(lab.topology["client"], "ss-local",
                                     ["ss-local", "-s", lab.addr("proxy"), "-p", str(SS_PORT),
                                      "-b", "127.0.0.1", "-l", "1080", *common])  # fmt: skip
        server.wait_for_line("listening", 5)
        local.wait_for_line("listening", 5)
        lab.echo("voip", str(ECHO_PORT))
        lab.censor(probe)
        via = lab.topology["client"].run(
            [PY, "-m", "harness.net.echo", "tcp", "--host", lab.addr("voip"), "--port",
             str(ECHO_PORT), "--socks", "127.0.0.1:1080"], check=False, timeout=20)  # fmt: skip
        carried = json.loads(via.stdout.splitlines()[-1]).get("ok") is True if via.stdout else False
        target = f"{lab.addr('proxy')}:{SS_PORT}"
        verdict = _wait_verdict(lab, target, 12 * wait + 10)
        probes = [e for e in lab.events("probe") if e["server"] == target]
        blocks = [e for e in lab.events("block") if e["server"] == lab.addr("proxy")]
    replays = [p for p in probes if p["probe"] == "replay"]
    by_len = {p["length"]: p["outcome"] for p in probes if p["probe"] == "random"}
    short = {n: by_len.get(n, "missing") for n in SHORT}
    long = {n: by_len.get(n, "missing") for n in LONG}
    report.configured["genuine_connection_carried"] = carried
    report.rows += [
        Row("replayed first packet (2 replays)",
            Published("no data back (replay filter since shadowsocks-libev 3.3.1); servers "
                      "without one answer with data and are identified", PAPER,
                      "replay probes; disclosure"),
            Measured(", ".join(f"{p['outcome']} after {p['ms']:.0f} ms" for p in replays), "",
                     len(replays)),
            len(replays) == 2 and all(p["outcome"] != "data" for p in replays),
            "no replay answered with data"),
        Row(f"random probes shorter than {AEAD_THRESHOLD} bytes {SHORT}",
            Published("silence: the AEAD header is not complete", PAPER, "server reactions"),
            Measured(", ".join(f"{n}: {o}" for n, o in short.items()), f"waited {wait:g} s",
                     len(short)),
            all(o == "timeout" for o in short.values()),
            f"every one silent for the probe's {wait:g} s"),
        Row(f"random probes of {AEAD_THRESHOLD} bytes and more {LONG}",
            Published("the servers of the time closed once authentication failed (the "
                      "length-threshold fingerprint)", PAPER, "server reactions"),
            Measured(", ".join(f"{n}: {o}" for n, o in long.items()), "", len(long)),
            all(o in ("rst", "fin") for o in long.values()), "every one closed (RST or FIN)",
            FINDING_SILENT, finding=True),
        Row("the censor's verdict on the server",
            Published("identified as a proxy, then blocked", PAPER, "blocking after probing"),
            Measured(f"proxy={verdict.get('proxy')}: {verdict.get('reason', '')}; "
                     f"{len(blocks)} block event(s)", "", 1),
            bool(verdict.get("proxy")) and bool(blocks),
            "identified by the length threshold and its IP blocked", FINDING_SILENT,
            finding=True),
    ]  # fmt: skip
    return report
