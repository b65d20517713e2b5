"""The Docker engine on this machine: a few facts (does the daemon answer, is dockerd
installed and running, does DOCKER_HOST name another daemon) and what to do about them.

`docker_action` decides; `docker_remedy` says it as a command to run. `scripts/setup` acts on
the same decision (`python -m harness.doctor docker-action`), `gatecrash doctor` explains it
and the Docker backend's connection error quotes it, so the three never disagree.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DockerAction = Literal["ready", "install-cli", "fix-host", "wait", "start", "install"]
DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# Where scripts/setup sends the log of a dockerd it starts itself (no systemd to do it).
DOCKERD_LOG = "/var/log/gatecrash-dockerd.log"


@dataclass(frozen=True)
class DockerFacts:
    """What decides the Docker action; gathered by `docker_facts`, made up in tests."""

    answers: bool  # the daemon answered a ping
    cli: str | None  # the docker CLI (programs run in containers through `docker exec`)
    dockerd: str | None  # the daemon's binary
    dockerd_running: bool  # a dockerd process exists (answering or not)
    docker_host: str | None  # DOCKER_HOST, when it names another daemon than the local one
    systemd: bool  # systemd runs the machine: `systemctl` can start services


def docker_action(facts: DockerFacts) -> DockerAction:
    """What to do to get a daemon that answers. A daemon elsewhere (DOCKER_HOST) or a local
    one that runs but does not answer yet is never replaced by another one."""
    if facts.answers:
        return "ready" if facts.cli else "install-cli"
    if facts.docker_host:
        return "fix-host"
    if facts.dockerd_running:
        return "wait"
    return "start" if facts.dockerd else "install"


def docker_start_command(systemd: bool) -> str:
    if systemd:
        return "systemctl start docker"
    return f"setsid nohup dockerd >>{DOCKERD_LOG} 2>&1 </dev/null &"


def docker_remedy(facts: DockerFacts) -> str:
    """The action as a sentence with the package and the command to run."""
    action = docker_action(facts)
    start = docker_start_command(facts.systemd)
    setup = "`bash scripts/setup` does this"
    if action == "ready":
        return "nothing to do: the daemon answers"
    if action == "install-cli":
        return ("the daemon answers but the docker CLI is missing (programs run through "
                "`docker exec`): install the CLI that matches the daemon: the Debian package "
                "docker.io (`apt-get install docker.io`) or docker-ce-cli from Docker's "
                "repository")  # fmt: skip
    if action == "fix-host":
        return (f"DOCKER_HOST={facts.docker_host} does not answer: start the daemon there, or "
                "unset DOCKER_HOST to use this machine's own")  # fmt: skip
    if action == "wait":
        log = "`journalctl -u docker`" if facts.systemd else f"{DOCKERD_LOG} (if setup started it)"
        return (f"a dockerd process runs but {DEFAULT_DOCKER_HOST} does not answer: it may "
                f"still be starting; wait, or read its log: {log}")  # fmt: skip
    if action == "start":
        how = "" if facts.systemd else " (no systemd here)"
        return (f"the Docker engine is installed ({facts.dockerd}) but not running: start it "
                f"with `{start}`{how}; {setup}")  # fmt: skip
    return ("the Docker engine is not installed: install the Debian package docker.io "
            f"(`apt-get install docker.io`), then start it with `{start}`; {setup}")  # fmt: skip


def docker_host_elsewhere() -> str | None:
    host = os.environ.get("DOCKER_HOST", "").strip()
    return host if host and host != DEFAULT_DOCKER_HOST else None


def dockerd_running() -> bool:
    import psutil

    return any(proc.info["name"] == "dockerd" for proc in psutil.process_iter(["name"]))


def docker_answers(timeout: float = 5.0) -> bool:
    from docker.errors import DockerException

    import docker

    try:
        docker.from_env(timeout=timeout).ping()
    except (DockerException, OSError):
        return False
    return True


def docker_facts(answers: bool | None = None) -> DockerFacts:
    """The facts of this machine; `answers` when the caller has just pinged the daemon."""
    return DockerFacts(
        answers=docker_answers() if answers is None else answers,
        cli=shutil.which("docker"),
        dockerd=shutil.which("dockerd"),
        dockerd_running=dockerd_running(),
        docker_host=docker_host_elsewhere(),
        systemd=Path("/run/systemd/system").is_dir(),
    )
