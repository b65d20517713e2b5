"""curl, the real HTTPS client of the bystander workloads (web, download): its command
line, and what its exit status says about the censor in gatecrash's outcome classes."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from typing import IO, Any

# curl's exit statuses (man curl, EXIT CODES) -> outcome classes of harness/results.py
_DNS = {5, 6}
_TLS = {35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 83, 90, 91, 98}
_TIMEOUT = {28}
# 7: connect failed before its timeout (a RST or an ICMP unreachable); curl 7.88 says only
# "Couldn't connect to server", a stalled connect is 28
_REFUSED = {7}
PARALLEL = 6  # connections at once, as browsers open per host
CONNECT_TIMEOUT_S = 10.0  # a connection that has not opened by then is given up on
WRITE_OUT = "%{stderr}%{json}\n"  # each transfer's figures as one JSON line on stderr


@dataclass
class Transfer:
    """One URL's transfer as curl reported it (-w %{json})."""

    url: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.info.get("exitcode") == 0 and self.info.get("http_code") == 200

    @property
    def ms(self) -> float:
        return round(float(self.info.get("time_total", 0.0)) * 1000, 2)

    @property
    def bytes(self) -> int:
        return int(self.info.get("size_download", 0))

    def failure(self) -> str:
        code, http = self.info.get("exitcode"), self.info.get("http_code")
        why = self.info.get("errormsg") or (f"HTTP {http}" if http else "no figures")
        return f"{self.url}: curl exit {code}: {why}"


def outcome(transfer: Transfer) -> str:
    """The outcome class of a failed transfer, from curl's exit status and message."""
    code = transfer.info.get("exitcode")
    message = str(transfer.info.get("errormsg") or "").lower()
    if "reset" in message:
        return "reset"
    if code in _DNS:
        return "dns-failure"
    if code in _TIMEOUT:
        return "timeout"
    if code in _REFUSED or "refused" in message:
        return "refused"
    if code in _TLS:
        return "tls-alert"
    return "error"


def curl_argv(ca: str, timeout: float, socks: str | None) -> list[str]:
    """curl trusting only the run CA, bounded in time; names go to the tool's SOCKS5 proxy
    when there is one (--socks5-hostname: the proxy resolves, as a browser set to it does)."""
    argv = ["curl", "--no-progress-meter", "--cacert", ca, "--write-out", WRITE_OUT]
    connect = min(timeout, CONNECT_TIMEOUT_S)
    argv += ["--max-time", f"{timeout:g}", "--connect-timeout", f"{connect:g}"]
    if socks:
        argv += ["--socks5-hostname", socks]
    return argv


def parse_write_out(stderr: str, urls: list[str]) -> list[Transfer]:
    """Match curl's JSON lines to the URLs asked for (in parallel mode they come in the
    order transfers end); a URL without a line gets none (curl never tried it)."""
    by_url: dict[str, dict[str, Any]] = {}
    for line in stderr.splitlines():
        if (start := line.find('{"')) >= 0:
            info = json.loads(line[start:])
            by_url.setdefault(str(info.get("url")), info)
    return [Transfer(url, by_url.get(url, {"errormsg": "curl gave no figures"})) for url in urls]


def batches(count: int) -> int:
    """How many rounds of PARALLEL transfers `count` URLs take at worst."""
    return -(-count // PARALLEL)


def fetch_all(argv: list[str], urls: list[str], timeout: float) -> list[Transfer]:
    """Fetch the URLs in parallel (PARALLEL connections, as a browser opens) to /dev/null;
    each transfer is bounded by `timeout`, so all of them by that many rounds of it."""
    if not urls:
        return []
    cmd = [*argv, "--parallel", "--parallel-immediate", "--parallel-max", str(PARALLEL)]
    for url in urls:
        cmd += ["--output", "/dev/null", url]
    wall = timeout * batches(len(urls)) + 5
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=wall)
    return parse_write_out(proc.stderr, urls)


def fetch_into(argv: list[str], url: str, sink: IO[bytes] | None, timeout: float) -> Transfer:
    """Fetch one URL, handing its body to `sink` as it arrives (None: keep nothing)."""
    proc = subprocess.Popen(
        [*argv, "--output", "-", url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    while chunk := proc.stdout.read(1 << 20):
        if sink is not None:
            sink.write(chunk)
    stderr = proc.stderr.read().decode(errors="replace")
    proc.wait(timeout=timeout + 5)
    return parse_write_out(stderr, [url])[0]
