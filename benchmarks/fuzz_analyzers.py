"""Fuzzing (not a test): every DPI analyzer under atheris, coverage-guided, for a set time.

    .venv/bin/pip install -e '.[test,fuzz]'
    .venv/bin/python benchmarks/fuzz_analyzers.py [--seconds 30] [--only tls quic ...]
                                                  [--findings DIR] [--corpus DIR]

Each target runs in a process of its own (libFuzzer ends the process when its time is up):
one analyzer, fed flows decoded from the fuzzer's bytes through its public interface
(`new_stream`, then `feed(rev, data)` per packet until it says done, then `close`), seeded
with real packets of every protocol (the unit tests' builders: OpenSSL, aioquic, dnslib,
...). `quic-sealed` seals the fuzzer's bytes as the frames of a valid QUIC Initial, so the
frame and ClientHello parsers behind the AEAD are reached too; `tls-noreassemble` is TLS
read packet by packet. The contract (analyzers/base.py) allows "not my protocol" only as
`new_stream` returning None or `feed` returning done: any exception, or a result of the
wrong shape, is a finding. Findings are kept (input and traceback) in `--findings`, one
per distinct place in the analyzer's code, and the run goes on.

Input format: byte 0 bit 0 picks TCP (0) or UDP (1); then packets, each a flags byte
(bit 0: server -> client), a 16-bit big-endian length and that many bytes (fewer at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import re
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TCP_INFO = ("tcp", "10.77.0.2", 40123, "10.77.128.5", 443)
UDP_INFO = ("udp", "10.77.0.2", 40123, "10.77.128.5", 443)
MAX_PACKETS = 16
MAX_LEN = 8192  # bytes of fuzzer input per run
FINDINGS = Path(tempfile.gettempdir()) / "gatecrash-fuzz"
VARIANTS = {"tls-noreassemble": ("tls", {"reassemble": False}), "quic-sealed": ("quic", {})}

Packets = list[tuple[bool, bytes]]


# -- The input format --------------------------------------------------------------------------


def decode(data: bytes) -> tuple[bool, Packets]:
    """(udp, packets) of one fuzzer input (see the module's docstring)."""
    if not data:
        return False, []
    udp, pos, packets = bool(data[0] & 1), 1, []
    while pos < len(data) and len(packets) < MAX_PACKETS:
        flags = data[pos]
        (length,) = struct.unpack("!H", data[pos + 1 : pos + 3].ljust(2, b"\0"))
        payload = data[pos + 3 : pos + 3 + length]
        packets.append((bool(flags & 1), payload))
        pos += 3 + length
    return udp, packets


def encode(udp: bool, packets: Packets) -> bytes:
    out = bytes([int(udp)])
    for rev, payload in packets:
        out += bytes([int(rev)]) + struct.pack("!H", len(payload)) + payload
    return out


# -- Seeds: real packets -----------------------------------------------------------------------


def seed_flows() -> list[Packets]:
    """Flows of real packets (the unit tests' builders), whole and cut into segments."""
    from tests.unit.test_analyzers import INVITE, RINGING, rtp, tls_client_hello
    from tests.unit.test_analyzers_fuzz import SEEDS

    hello = tls_client_hello("blocked.example.org", ["h2"])
    flows: list[Packets] = [[(False, seed)] for seed in SEEDS]
    flows += [
        [(False, hello[:1]), (False, hello[1:60]), (False, hello[60:])],
        [(False, INVITE[:100]), (False, INVITE[100:]), (True, RINGING)],
        [(False, rtp(1)), (False, rtp(2)), (True, rtp(7, ssrc=9)), (False, rtp(3))],
        [(False, seed[:5]) for seed in SEEDS[:6]],
    ]
    return flows


def sealed_seeds() -> tuple[bytes, list[Packets]]:
    """(DCID, flows of CRYPTO frames) for quic-sealed: the hello whole and in pieces."""
    from tests.unit.test_analyzers import _client_hello_of, _crypto, quic_initials

    dcid, hello = _client_hello_of(quic_initials("www.youtube.com", ["h3"])[0])
    cut = len(hello) // 2
    return dcid, [
        [(False, _crypto(0, hello))],
        [(False, _crypto(cut, hello[cut:]) + b"\x01"), (False, _crypto(0, hello[:cut]))],
    ]


def write_corpus(target: str, corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    flows = sealed_seeds()[1] if target == "quic-sealed" else seed_flows()
    for flow in flows:
        for udp in (False, True):
            data = encode(udp, flow)
            (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data[:MAX_LEN])


# -- One target, in its own process ------------------------------------------------------------


@dataclass
class Finding:
    target: str
    kind: str
    where: str
    text: str


class Harness:
    """One target's test function: decodes, runs the analyzer's streams, keeps findings."""

    def __init__(self, target: str, findings: Path) -> None:
        from censor_sims.analyzers import FlowInfo, get

        name, options = VARIANTS.get(target, (target, {}))
        self.target, self.findings = target, findings
        self.analyzer = get(name, **options)
        self.infos = (FlowInfo(*TCP_INFO), FlowInfo(*UDP_INFO))
        self.seal = self._sealer() if target == "quic-sealed" else None
        self.seen: set[str] = set()

    def _sealer(self) -> Callable[[bytes, int], bytes]:
        from tests.unit.test_analyzers import _initial

        dcid = sealed_seeds()[0]
        return lambda frames, pn: _initial(dcid, frames[:1100], pn)

    def __call__(self, data: bytes) -> None:
        udp, packets = decode(data)
        if self.seal is not None:
            udp = True
            packets = [(False, self.seal(p, n % 4)) for n, (_, p) in enumerate(packets)]
        try:
            self.run_flow(self.infos[udp], packets)
        except Exception as exc:
            self.record(data, exc)

    def run_flow(self, info: Any, packets: Packets) -> None:
        stream = self.analyzer.new_stream(info)
        if stream is None:
            return  # "not my protocol" for this transport
        for rev, payload in packets:
            update, done = stream.feed(rev, payload)
            check_update(update)
            if not isinstance(done, bool):
                raise ContractViolation(f"done is {type(done).__name__}, not bool")
            if done:
                break
        check_update(stream.close())

    def record(self, data: bytes, exc: Exception) -> None:
        where = innermost_analyzer_frame(exc)
        key = f"{type(exc).__name__} at {where}"
        if key in self.seen:
            return
        self.seen.add(key)
        stem = f"{self.target}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
        (self.findings / f"{stem}.bin").write_bytes(data)
        text = "".join(traceback.format_exception(exc))
        (self.findings / f"{stem}.txt").write_text(f"{self.target}: {key}\n\n{text}")
        print(f"\nFINDING {self.target}: {key}", file=sys.stderr, flush=True)


class ContractViolation(Exception):
    """A stream returned something of the wrong shape (base.Stream says what is allowed)."""


def check_update(update: object) -> None:
    if update is None:
        return
    if not isinstance(update, dict) or not all(isinstance(k, str) for k in update):
        raise ContractViolation(f"update is {update!r:.80}, not a dict with str keys")


def innermost_analyzer_frame(exc: BaseException) -> str:
    """file:line of the deepest frame inside censor_sims (where the bug is), else the
    deepest frame at all."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "censor_sims" in f.filename] or frames
    last = ours[-1] if ours else None
    return f"{Path(last.filename).name}:{last.lineno}" if last else "?"


def fuzz_one(target: str, seconds: float, findings: Path, corpus: Path) -> None:
    """Never returns: libFuzzer exits when the time is up."""
    import atheris

    with atheris.instrument_imports(include=["censor_sims.analyzers"]):
        import censor_sims.analyzers  # noqa: F401
    write_corpus(target, corpus)
    harness = Harness(target, findings)
    argv = [sys.argv[0], f"-max_total_time={int(seconds)}", f"-max_len={MAX_LEN}",
            "-print_final_stats=1", "-timeout=10", str(corpus)]  # fmt: skip
    atheris.Setup(argv, harness)
    atheris.Fuzz()


# -- The driver: every target in turn ---------------------------------------------------------


@dataclass
class Outcome:
    target: str
    seconds: float
    executions: int
    rate: int
    coverage: int
    corpus: int
    findings: list[str]
    exit_code: int


def targets() -> list[str]:
    from censor_sims.analyzers import names

    return [*names(), *VARIANTS]


def stat(pattern: str, text: str) -> int:
    found = re.findall(pattern, text)
    return int(found[-1]) if found else 0


def run_target(target: str, seconds: float, findings: Path, corpus: Path) -> Outcome:
    before = set(findings.glob(f"{target}-*.txt"))
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, __file__, "--child", target, "--seconds", str(seconds),
         "--findings", str(findings), "--corpus", str(corpus / target)],
        capture_output=True, text=True, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    elapsed = time.monotonic() - start
    log = proc.stdout + proc.stderr
    (findings / f"{target}.log").write_text(log)
    new = sorted(set(findings.glob(f"{target}-*.txt")) - before)
    return Outcome(
        target=target,
        seconds=elapsed,
        executions=stat(r"stat::number_of_executed_units:\s*(\d+)", log),
        rate=stat(r"stat::average_exec_per_sec:\s*(\d+)", log),
        coverage=stat(r"\bcov: (\d+)", log),
        corpus=stat(r"\bcorp: (\d+)", log),
        findings=[p.read_text().splitlines()[0] for p in new],
        exit_code=proc.returncode,
    )


def print_outcome(o: Outcome) -> None:
    mark = f"{len(o.findings)} finding(s)" if o.findings else "no finding"
    if o.exit_code != 0 and not o.executions:
        mark += f"; fuzzer exited {o.exit_code} (see the .log)"
    print(f"{o.target:18s} {o.seconds:7.1f} s {o.executions:11,d} {o.rate:10,d}/s "
          f"{o.coverage:7d} {o.corpus:7d}  {mark}", flush=True)  # fmt: skip
    for line in o.findings:
        print(f"{'':20s}{line}")


@contextlib.contextmanager
def directory(given: Path | None, prefix: str) -> Iterator[Path]:
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given
        return
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        yield Path(tmp)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="per target (default 30)")
    parser.add_argument("--only", nargs="+", metavar="TARGET", help="these targets only")
    parser.add_argument("--findings", type=Path, default=FINDINGS)
    parser.add_argument("--corpus", type=Path, help="keep the corpora here (default: temp)")
    parser.add_argument("--child", metavar="TARGET", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.findings.mkdir(parents=True, exist_ok=True)
    if args.child:
        fuzz_one(args.child, args.seconds, args.findings, args.corpus)
        return
    chosen = args.only or targets()
    unknown = sorted(set(chosen) - set(targets()))
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; choose from {targets()}")
    print(f"atheris, {args.seconds:g} s per target, findings in {args.findings}")
    print(f"{'target':18s} {'time':>9s} {'executions':>11s} {'rate':>12s} {'cov':>7s} "
          f"{'corpus':>7s}  findings")  # fmt: skip
    total = 0
    with directory(args.corpus, "gatecrash-fuzz-") as corpus:
        for target in chosen:
            outcome = run_target(target, args.seconds, args.findings, corpus)
            print_outcome(outcome)
            total += len(outcome.findings)
    print(f"{total} finding(s) in all")
    sys.exit(1 if total else 0)


if __name__ == "__main__":
    main()
