"""benchmarks/fuzz_analyzers.py's harness, without atheris: a fuzz run that found nothing
means something only if a raising or misbehaving analyzer would have been caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.fuzz_analyzers import Harness, decode, encode, targets
from censor_sims.analyzers import ANALYZERS, Analyzer, Stream, names


class _Boom(Stream):
    def feed(self, rev: bool, data: bytes):
        if data.startswith(b"boom"):
            raise IndexError("boom")
        if data.startswith(b"shape"):
            return ["not", "a", "dict"], False
        return None, False


class _BoomAnalyzer(Analyzer, register=False):
    name = "boom-test"
    limit = 1000

    def new_tcp(self, info):
        return _Boom()


@pytest.fixture
def boom(monkeypatch) -> str:
    monkeypatch.setitem(ANALYZERS, "boom-test", _BoomAnalyzer)
    return "boom-test"


def test_input_format_round_trips_and_tolerates_truncation() -> None:
    packets = [(False, b"hello"), (True, b""), (False, bytes(300))]
    assert decode(encode(True, packets)) == (True, packets)
    udp, cut = decode(encode(False, packets)[:10])
    assert not udp and cut == [(False, b"hello"), (True, b"")]
    assert decode(b"") == (False, [])


def test_an_exception_is_a_finding_kept_once_with_its_input(boom: str, tmp_path: Path) -> None:
    harness = Harness(boom, tmp_path)
    data = encode(False, [(False, b"ok"), (False, b"boom!")])
    harness(data)
    harness(encode(False, [(False, b"boom again")]))  # same place: not kept twice
    kept = sorted(tmp_path.glob("boom-test-*"))
    assert [p.suffix for p in kept] == [".bin", ".txt"]
    assert kept[0].read_bytes() == data
    assert "IndexError" in kept[1].read_text()


def test_a_result_of_the_wrong_shape_is_a_finding(boom: str, tmp_path: Path) -> None:
    Harness(boom, tmp_path)(encode(False, [(False, b"shape")]))
    assert "ContractViolation" in next(tmp_path.glob("*.txt")).read_text()


def test_not_my_protocol_is_no_finding(tmp_path: Path) -> None:
    harness = Harness("rtp", tmp_path)  # rtp has no TCP stream: new_stream returns None
    harness(encode(False, [(False, bytes(64))]))
    assert list(tmp_path.iterdir()) == []


def test_every_analyzer_is_a_target() -> None:
    assert set(names()) <= set(targets())
