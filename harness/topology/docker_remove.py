"""Removing Docker objects without stopping at the first one that will not go.

Used by a trial's tear-down and by `gatecrash clean`. Each container, network and volume is
removed on its own, retried with back-off; before a network is removed, every endpoint it
still lists is force-disconnected, also one whose container no longer exists (a stale
endpoint in Docker's store, which otherwise fails the removal with "has active endpoints"),
but never a running container of someone else: that network is a leftover. A leftover keeps
its labels, so `gatecrash clean` finds it later.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from harness.topology.docker_labels import RUN_LABEL, TRIAL_LABEL
from harness.topology.leftovers import Leftover, one_line

ATTEMPTS = 5  # waits 0.2, 0.4, 0.8, 1.6 s between them


def docker_errors() -> tuple[type[BaseException], ...]:
    """What a Docker call raises when the daemon refuses or cannot be reached."""
    from docker.errors import DockerException
    from requests import RequestException

    return (DockerException, RequestException, OSError)


@dataclass
class DockerRemoval:
    removed: list[str] = field(default_factory=list)
    leftovers: list[Leftover] = field(default_factory=list)


class _StillAttached(Exception):
    """A network a running container of someone else is still attached to."""

    def __init__(self, cause: BaseException, foreign: list[str]) -> None:
        super().__init__(str(cause))
        self.cause, self.foreign = cause, foreign


def _retrying() -> Retrying:
    return Retrying(
        stop=stop_after_attempt(ATTEMPTS),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        retry=retry_if_exception_type((*docker_errors(), _StillAttached)),
        reraise=True,
    )


def remove_labelled(client: Any, labels: dict[str, str], trial: str | None = None) -> DockerRemoval:
    """Remove the containers, then the networks and volumes, carrying all of `labels` (and
    this trial label, if given), each on its own."""
    filters = {"label": [f"{k}={v}" for k, v in labels.items()]}
    if trial is not None:
        filters["label"].append(f"{TRIAL_LABEL}={trial}")
    out = DockerRemoval()
    what = " ".join(f"{k}={v}" for k, v in labels.items())
    try:
        containers = client.containers.list(all=True, filters=filters, ignore_removed=True)
    except docker_errors() as exc:
        out.leftovers.append(Leftover("docker", what, _reason(exc), "gatecrash clean"))
        return out
    with ThreadPoolExecutor(max(len(containers), 1)) as pool:
        for name, leftover in pool.map(remove_container, containers):
            _record(out, name, leftover)
    try:
        networks = client.networks.list(filters=filters)
        volumes = client.volumes.list(filters=filters)
    except docker_errors() as exc:
        out.leftovers.append(Leftover("docker", what, _reason(exc), "gatecrash clean"))
        return out
    run = labels.get(RUN_LABEL)
    for net in networks:
        _record(out, net.name, remove_network(client, net, run))
    for vol in volumes:
        _record(out, vol.name, remove_volume(vol))
    return out


def _record(out: DockerRemoval, name: str, leftover: Leftover | None) -> None:
    if leftover is None:
        out.removed.append(name)
    else:
        out.leftovers.append(leftover)


def remove_container(container: Any) -> tuple[str, Leftover | None]:
    from docker.errors import NotFound

    try:
        for attempt in _retrying():
            with attempt, contextlib.suppress(NotFound):
                container.remove(force=True, v=True)
    except docker_errors() as exc:
        name = container.name
        return name, Leftover("container", name, _reason(exc), f"docker rm -f {name}")
    return container.name, None


def remove_network(client: Any, net: Any, run: str | None) -> Leftover | None:
    """Disconnect what is left attached (see the module doc), then remove; retried."""
    from docker.errors import NotFound

    foreign: list[str] = []
    try:
        for attempt in _retrying():
            with attempt, contextlib.suppress(NotFound):
                net.reload()
                foreign = disconnect_endpoints(client, net, run)
                try:
                    net.remove()
                except docker_errors() as exc:
                    if foreign and not isinstance(exc, NotFound):
                        raise _StillAttached(exc, foreign) from exc
                    raise
    except (*docker_errors(), _StillAttached) as exc:
        reason = _reason(exc.cause if isinstance(exc, _StillAttached) else exc)
        if foreign:
            names = ", ".join(foreign)
            reason += f"; still attached: {names} (running, not of this run: left alone)"
        steps = [f"docker network disconnect -f {net.name} {c}" for c in foreign]
        command = " && ".join([*steps, f"docker network rm {net.name}"])
        return Leftover("network", net.name, reason, command)
    return None


def disconnect_endpoints(client: Any, net: Any, run: str | None) -> list[str]:
    """Force-disconnect every endpoint the network lists whose container is gone or is of
    `run`; returns the names of the running containers of others, left attached."""
    from docker.errors import NotFound

    foreign = []
    for key, endpoint in list((net.attrs.get("Containers") or {}).items()):
        name = endpoint.get("Name") or key
        try:
            owner = client.containers.get(key)
        except NotFound:
            owner = None  # a stale endpoint: Docker removes it by the container's name
        if owner is not None and _someone_elses_running(owner, run):
            foreign.append(name)
            continue
        with contextlib.suppress(NotFound):
            net.disconnect(owner.id if owner is not None else name, force=True)
    return foreign


def _someone_elses_running(container: Any, run: str | None) -> bool:
    mine = (container.labels or {}).get(RUN_LABEL) == run
    return not mine and container.status in ("running", "paused", "restarting")


def remove_volume(vol: Any) -> Leftover | None:
    from docker.errors import NotFound

    try:
        for attempt in _retrying():
            with attempt, contextlib.suppress(NotFound):
                vol.remove(force=True)
    except docker_errors() as exc:
        return Leftover("volume", vol.name, _reason(exc), f"docker volume rm -f {vol.name}")
    return None


def _reason(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return one_line(str(explanation or exc) or type(exc).__name__)
