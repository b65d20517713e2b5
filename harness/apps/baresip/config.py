"""A baresip 1.0 configuration directory per instance, generated for one trial.

baresip reads `config`, `accounts` and `contacts` from the directory given with `-f`. No
sound card: `ausine` is the source (it only runs at 48 kHz stereo; baresip resamples to
PCMU's 8 kHz mono) and `aubridge` the player. The account is NOT in `accounts`: the driver
creates it over ctrl_tcp (`uanew`) once connected, so that it sees the REGISTER's outcome
(events sent before a ctrl_tcp client connects are lost). Facts: baresip 1.0's own
documentation (docs/examples/config, modules/ctrl_tcp) and what Debian's baresip-core does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MODULE_PATH = "/usr/lib/baresip/modules"
CTRL_PORT = 4444  # each instance has a network namespace of its own: one port for all
# Modules loaded by every instance: codecs and audio devices, then the applications.
MODULES = ("g711", "ausine", "aubridge")
APP_MODULES = ("account", "menu", "ctrl_tcp", "rtcpsummary")


@dataclass(frozen=True)
class BaresipConfig:
    """What differs between the instances of one trial."""

    bind_ip: str  # the host's own address: SIP, RTP and the interface to bind
    sip_port: int
    dns_server: str  # the resolver this host uses (the run's DNS), ip:port
    ctrl_port: int = CTRL_PORT
    tone_hz: int = 440

    def config_text(self) -> str:
        lines = [
            "# gatecrash: one baresip instance of one trial (generated;",
            "# see harness/apps/baresip/config.py)",
            f"module_path {MODULE_PATH}",
            f"sip_listen {self.bind_ip}:{self.sip_port}",
            "sip_transports udp",
            f"net_interface {self.bind_ip}",
            f"dns_server {self.dns_server}",
            "rtp_ports 10000-20000",
            "rtp_stats yes",  # the Transmit/Receive table printed when a call closes
            f"audio_source ausine,{self.tone_hz}",
            "audio_player aubridge,nil",
            "audio_alert aubridge,nil",
            "ausrc_srate 48000",  # ausine runs at 48 kHz stereo only
            "ausrc_channels 2",
            f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
            *(f"module {m}.so" for m in MODULES),
            *(f"module_app {m}.so" for m in APP_MODULES),
        ]
        return "\n".join(lines) + "\n"


def account_line(user: str, domain: str, answer_auto: bool) -> str:
    """The account as `uanew` takes it: UDP, PCMU only, registration every 600 s."""
    answermode = "auto" if answer_auto else "manual"
    return (
        f"<sip:{user}@{domain};transport=udp>;regint=600;answermode={answermode};audio_codecs=PCMU"
    )


def write_config_dir(directory: Path, config: BaresipConfig) -> Path:
    """Create `directory` with config, an empty accounts file and no contacts."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config").write_text(config.config_text())
    (directory / "accounts").write_text(
        "# empty: the driver creates the account over ctrl_tcp (uanew)\n"
    )
    (directory / "contacts").write_text("")
    return directory
