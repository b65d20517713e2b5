"""coturn 4.6 (Debian `coturn`, binary `turnserver`) as the STUN/TURN server of a trial.

It listens on UDP and TCP 3478 and on TLS 443 (a certificate of the run's CA, so clients
verify it as they would a public one), relays from the `voip` address, and keeps every path
(pid file, user database) in the trial directory so that instances run side by side.
Readiness is checked on the sockets: coturn's stdout log is block-buffered when redirected.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness.programs import require
from harness.topology.base import fqdn

if TYPE_CHECKING:
    from harness.trial import TrialContext

BINARY, PACKAGE = "turnserver", "coturn"
STUN_PORT = 3478  # UDP and TCP
TLS_PORT = 443
REALM = "gatecrash.test"
RELAY_PORTS = (49160, 49400)


@dataclass(frozen=True)
class TurnConfig:
    directory: Path
    ip: str
    user: str
    password: str
    cert: Path
    key: Path

    @property
    def path(self) -> Path:
        return self.directory / "turnserver.conf"


def turnserver_config(cfg: TurnConfig) -> str:
    lines = [
        "# gatecrash: coturn for one trial (generated; see harness/apps/webrtc/coturn.py)",
        f"listening-ip={cfg.ip}",
        f"relay-ip={cfg.ip}",
        f"listening-port={STUN_PORT}",
        f"tls-listening-port={TLS_PORT}",
        f"min-port={RELAY_PORTS[0]}",
        f"max-port={RELAY_PORTS[1]}",
        f"realm={REALM}",
        "lt-cred-mech",
        "fingerprint",
        f"user={cfg.user}:{cfg.password}",
        f"cert={cfg.cert}",
        f"pkey={cfg.key}",
        f"pidfile={cfg.directory / 'turnserver.pid'}",
        f"userdb={cfg.directory / 'turndb'}",
        "no-cli",
        "no-dtls",
        "no-multicast-peers",
        "log-file=stdout",
        "simple-log",
    ]
    return "\n".join(lines) + "\n"


def prepare(cfg: TurnConfig) -> Path:
    cfg.directory.mkdir(parents=True, exist_ok=True)
    cfg.path.write_text(turnserver_config(cfg))
    return cfg.path


def turnserver_argv(cfg: TurnConfig) -> list[str]:
    return [BINARY, "-c", str(cfg.path)]


def start(ctx: TrialContext) -> tuple[str, str]:
    """coturn on `voip` for this trial, ready on UDP 3478 and TLS 443; its (user, password)."""
    require(BINARY, PACKAGE)
    voip = ctx.topology["voip"]
    user, password = "gatecrash", secrets.token_hex(12)
    cert, key = ctx.ca.issue("turn", [fqdn("voip")], [voip.addr], out_dir=ctx.dir)
    turn = TurnConfig(ctx.dir / "coturn", voip.addr, user, password, cert, key)
    prepare(turn)
    server = ctx.supervisor.start(voip, "coturn", turnserver_argv(turn))
    server.wait_until(
        lambda: voip.listening(TLS_PORT) and voip.listening(STUN_PORT, "udp"),
        5,
        "coturn listening on UDP 3478 and TLS 443",
    )
    return user, password
