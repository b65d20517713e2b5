"""A pcap of the censor's two legs per trial (`capture: true`): the raw evidence.

dumpcap writes one pcapng with both interfaces; packets the censor drops appear on the leg
they arrived on and not on the other, so drops can be told from losses elsewhere.
"""

from __future__ import annotations

import time
from pathlib import Path

from censor_sims.technique import INSIDE_IF, OUTSIDE_IF
from harness.programs import require
from harness.topology.base import Host
from harness.topology.process import ManagedProcess, Supervisor


def start_capture(host: Host, supervisor: Supervisor, path: Path) -> ManagedProcess:
    require("dumpcap", "tshark")
    proc = supervisor.start(
        host,
        "dumpcap",
        ["dumpcap", "-q", "-i", INSIDE_IF, "-i", OUTSIDE_IF, "-w", str(path)],
    )
    # dumpcap says "Capturing on" before its sockets see packets; ready is when both
    # packet sockets are bound in the censor's namespace.
    proc.wait_until(lambda: _packet_sockets(host) >= 2, 10, "capture sockets bound")
    return proc


def _packet_sockets(host: Host) -> int:
    lines = host.run(["cat", "/proc/net/packet"], check=False).stdout.splitlines()[1:]
    # columns: sk RefCnt Type Proto Iface R Rmem User Inode; bound = Iface != 0, R(unning) 1
    return sum(1 for f in map(str.split, lines) if len(f) > 5 and f[4] != "0" and f[5] == "1")


# dumpcap reads packets in blocks that the kernel hands over every 250 ms (its pcap read
# timeout); stopping sooner loses the last block.
BLOCK_TIMEOUT_S = 0.3


def stop_capture(proc: ManagedProcess) -> None:
    time.sleep(BLOCK_TIMEOUT_S)
    proc.stop()
