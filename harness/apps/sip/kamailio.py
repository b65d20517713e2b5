"""Kamailio 5.6 as a minimal registrar + proxy: in-memory location, UDP and TCP, no DNS.

The config is generated per trial so that many instances run side by side: every path
(runtime dir, pid file) comes from arguments, and no control socket or FIFO is opened.
No Record-Route: in-dialog requests (ACK for 2xx, BYE) carry the callee's Contact in the
R-URI and are relayed to it, so the proxy keeps no dialog state it does not need.
"""

from __future__ import annotations

from pathlib import Path

# DNS is off everywhere: a namespace has no resolver that may be asked, and a reverse
# lookup at start-up or on a Via would stall the first answer by seconds.
_CONFIG = """#!KAMAILIO
# gatecrash: registrar + proxy for one trial (generated; see harness/apps/sip/kamailio.py)
debug=2
log_stderror=yes
children=2
tcp_children=2
enable_sctp=no
enable_tls=no
auto_aliases=no
{alias}
listen=udp:{ip}:{port}
listen=tcp:{ip}:{port}
dns=no
rev_dns=no
dns_try_ipv6=no
dns_try_naptr=no
use_dns_cache=no
use_dns_failover=no
dst_blocklist_init=no
tcp_connection_lifetime=3605

loadmodule "pv.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "siputils.so"
loadmodule "textops.so"
loadmodule "xlog.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"

modparam("usrloc", "db_mode", 0)
# A callee that is gone answers 408 after 4 s instead of tm's default 30 s.
modparam("tm", "fr_timer", 4000)
modparam("tm", "fr_inv_timer", 60000)

request_route {{
    xlog("L_INFO", "$rm $ru from $proto:$si:$sp\\n");
    if (is_method("REGISTER")) {{
        if (!save("location")) {{
            sl_reply_error();
        }}
        exit;
    }}
    if (is_method("CANCEL")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    if (has_totag()) {{
        # In dialog. Without Record-Route the R-URI is the peer's Contact; an ACK that
        # matches a transaction (non-2xx final) is handled by tm, an ACK for 2xx and a BYE
        # are relayed to the R-URI.
        t_relay();
        exit;
    }}
    if (is_method("ACK")) {{
        if (t_check_trans()) {{
            t_relay();
        }}
        exit;
    }}
    t_check_trans();
    if (!lookup("location")) {{
        sl_send_reply("404", "Not Found");
        exit;
    }}
    if (!t_relay()) {{
        sl_reply_error();
    }}
}}
"""


def kamailio_config(listen_ip: str, port: int = 5060, domain: str | None = None) -> str:
    """kamailio.cfg text: registrar + proxy on udp/tcp `listen_ip:port`; `domain` becomes an
    alias (requests for sip:user@domain are local)."""
    alias = f'alias="{domain}"' if domain else ""
    return _CONFIG.format(ip=listen_ip, port=port, alias=alias)


def kamailio_argv(cfg_path: str | Path, runtime_dir: str | Path) -> list[str]:
    """Foreground Kamailio logging to stderr; runtime dir and pid file under `runtime_dir`
    (one per trial, so parallel instances never share a path)."""
    run = Path(runtime_dir).resolve()  # Kamailio changes directory (-w) before the pid file
    return [
        "kamailio",
        "-DD",  # stay in the foreground (the supervisor owns the process group)
        "-E",  # log to stderr, kept as the trial's log
        "-f", str(Path(cfg_path).resolve()),
        "-Y", str(run),
        "-P", str(run / "kamailio.pid"),
        "-w", str(run),  # working dir: where a core file would go
        "-m", "32",  # shared memory MB: a trial registers two users
        "-M", "4",
    ]  # fmt: skip
