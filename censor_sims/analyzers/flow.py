"""Running analyzers over one flow: the only place that calls analyzer code.

`FlowAnalysis` is what the DPI engine keeps per flow: it feeds each packet to the streams
still running, enforces every analyzer's byte limit per direction, merges the property
updates into one namespaced dict, and contains any exception an analyzer raises (the
stream is dropped and the error kept in `errors`; the packet is never lost because of it).
`classify` runs a whole list of packets through it, for tests and one-shot use.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from censor_sims.analyzers.base import Analyzer, FlowInfo, Props, Stream, get

log = logging.getLogger(__name__)


class _Running:
    __slots__ = ("analyzer", "limit", "seen", "stream")

    def __init__(self, analyzer: Analyzer, stream: Stream) -> None:
        self.analyzer = analyzer
        self.stream = stream
        self.limit = analyzer.limit
        self.seen = [0, 0]  # bytes fed, client -> server and server -> client


def _resolve(analyzers: Iterable[Analyzer | str]) -> list[Analyzer]:
    return [get(a) if isinstance(a, str) else a for a in analyzers]


class FlowAnalysis:
    """The analyzers' state for one flow, and the properties they published so far."""

    def __init__(self, analyzers: Iterable[Analyzer | str], info: FlowInfo) -> None:
        self.info = info
        self.props: dict[str, Props] = {}
        self.errors: list[tuple[str, str]] = []
        self._running: list[_Running] = []
        for analyzer in _resolve(analyzers):
            try:
                stream = analyzer.new_stream(info)
            except Exception as exc:  # an analyzer bug must not stop the flow
                self._fail(analyzer.name, exc)
                continue
            if stream is not None:
                self._running.append(_Running(analyzer, stream))

    @property
    def done(self) -> bool:
        """No stream wants more data: the engine can stop queueing this flow's packets."""
        return not self._running

    def feed(self, rev: bool, data: bytes) -> dict[str, Props]:
        """Feed one packet's payload; returns the updates it caused (namespaced)."""
        changed: dict[str, Props] = {}
        if not data or not self._running:
            return changed
        if type(data) is not bytes:
            data = bytes(data)  # analyzers rely on bytes methods (a memoryview has few)
        direction = 1 if rev else 0
        udp = self.info.proto == "udp"
        keep: list[_Running] = []
        for run in self._running:
            budget = run.limit - run.seen[direction]
            if budget <= 0:
                keep.append(run)  # the other direction may still have budget
                continue
            chunk = data if udp or len(data) <= budget else data[:budget]
            run.seen[direction] += len(chunk)
            try:
                update, done = run.stream.feed(rev, chunk)
            except Exception as exc:
                self._fail(run.analyzer.name, exc)
                continue
            if update:
                self._merge(run.analyzer.name, update, changed)
            if done:
                self._close(run, changed)
            elif run.seen[0] >= run.limit and run.seen[1] >= run.limit:
                self._close(run, changed)
            else:
                keep.append(run)
        self._running = keep
        return changed

    def close(self) -> dict[str, Props]:
        """The flow ended: close every stream still running, collect their last words."""
        changed: dict[str, Props] = {}
        for run in self._running:
            self._close(run, changed)
        self._running = []
        return changed

    def _close(self, run: _Running, changed: dict[str, Props]) -> None:
        try:
            update = run.stream.close()
        except Exception as exc:
            self._fail(run.analyzer.name, exc)
            return
        if update:
            self._merge(run.analyzer.name, update, changed)

    def _merge(self, name: str, update: Props, changed: dict[str, Props]) -> None:
        if not isinstance(update, dict):
            self.errors.append((name, f"update is {type(update).__name__}, not a dict"))
            return
        self.props.setdefault(name, {}).update(update)
        changed.setdefault(name, {}).update(update)

    def _fail(self, name: str, exc: Exception) -> None:
        log.debug("analyzer %s raised %r on %s", name, exc, self.info)
        self.errors.append((name, f"{type(exc).__name__}: {exc}"))


def classify(
    analyzers: Iterable[Analyzer | str],
    info: FlowInfo,
    packets: Iterable[tuple[bool, bytes]],
) -> dict[str, dict[str, Any]]:
    """Run `packets` ((rev, payload), in order) through the analyzers; the merged properties.

    Stops early once every stream is done; closes the streams still running at the end.
    """
    flow = FlowAnalysis(analyzers, info)
    for rev, data in packets:
        if flow.done:
            break
        flow.feed(rev, data)
    flow.close()
    return flow.props
