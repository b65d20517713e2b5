"""What setup, doctor and the Docker tests do about Docker, decided from made-up facts.

The running daemon is never stopped or uninstalled here: each case (daemon answers, binary
installed but not running, nothing installed, ...) is a `DockerFacts` value.
"""

from __future__ import annotations

import typing
from dataclasses import replace
from pathlib import Path

import pytest

from harness import docker_engine, doctor, images
from harness.docker_engine import (
    DOCKERD_LOG,
    DockerAction,
    DockerFacts,
    docker_action,
    docker_remedy,
    docker_start_command,
)

REPO = Path(__file__).resolve().parents[2]
RUNNING = DockerFacts(
    answers=True,
    cli="/usr/bin/docker",
    dockerd="/usr/sbin/dockerd",
    dockerd_running=True,
    docker_host=None,
    systemd=False,
)
STOPPED = replace(RUNNING, answers=False, dockerd_running=False)
ABSENT = replace(STOPPED, cli=None, dockerd=None)


def test_a_daemon_that_answers_is_left_alone() -> None:
    assert docker_action(RUNNING) == "ready"
    assert docker_remedy(RUNNING) == "nothing to do: the daemon answers"


def test_an_answering_daemon_without_the_cli_names_the_cli_package() -> None:
    facts = replace(RUNNING, cli=None)
    assert docker_action(facts) == "install-cli"
    assert "apt-get install docker.io" in docker_remedy(facts)


def test_installed_but_not_running_is_started_without_systemd_in_the_background() -> None:
    assert docker_action(STOPPED) == "start"
    remedy = docker_remedy(STOPPED)
    assert f"`{docker_start_command(False)}`" in remedy and "no systemd" in remedy
    assert DOCKERD_LOG in remedy and "bash scripts/setup" in remedy


def test_installed_but_not_running_is_started_by_systemd_when_it_runs() -> None:
    facts = replace(STOPPED, systemd=True)
    assert docker_action(facts) == "start"
    assert "`systemctl start docker`" in docker_remedy(facts)


def test_absent_engine_names_the_debian_package_and_the_commands() -> None:
    assert docker_action(ABSENT) == "install"
    remedy = docker_remedy(ABSENT)
    assert "docker.io" in remedy and "`apt-get install docker.io`" in remedy
    assert docker_start_command(False) in remedy


def test_a_dockerd_that_runs_but_does_not_answer_is_waited_for_not_restarted() -> None:
    facts = replace(RUNNING, answers=False)
    assert docker_action(facts) == "wait"
    assert "still be starting" in docker_remedy(facts)


def test_docker_host_elsewhere_is_never_replaced_by_a_local_daemon() -> None:
    for facts in (STOPPED, ABSENT):
        elsewhere = replace(facts, docker_host="tcp://10.9.9.9:2375")
        assert docker_action(elsewhere) == "fix-host"
        assert "DOCKER_HOST=tcp://10.9.9.9:2375 does not answer" in docker_remedy(elsewhere)


def test_docker_host_is_elsewhere_only_when_it_names_another_daemon(monkeypatch) -> None:
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    assert docker_engine.docker_host_elsewhere() is None
    monkeypatch.setenv("DOCKER_HOST", docker_engine.DEFAULT_DOCKER_HOST)
    assert docker_engine.docker_host_elsewhere() is None
    monkeypatch.setenv("DOCKER_HOST", "tcp://10.9.9.9:2375")
    assert docker_engine.docker_host_elsewhere() == "tcp://10.9.9.9:2375"


def test_every_action_has_its_own_remedy() -> None:
    cases = [RUNNING, replace(RUNNING, cli=None), replace(STOPPED, docker_host="tcp://x:1"),
             replace(RUNNING, answers=False), STOPPED, ABSENT]  # fmt: skip
    assert sorted(docker_action(f) for f in cases) == sorted(typing.get_args(DockerAction))
    assert len({docker_remedy(f) for f in cases}) == len(cases)


def test_connect_failure_says_what_to_run(monkeypatch, tmp_path) -> None:
    """What the Docker e2e tests fail with: the doctor's remedy, not a bare socket error."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(docker_engine, "docker_facts", lambda answers=None: ABSENT)
    with pytest.raises(images.DockerUnavailable) as caught:
        images.connect(timeout=2)
    message = str(caught.value)
    assert "`apt-get install docker.io`" in message and "--backend netns" in message


def test_doctor_check_names_the_package_when_the_engine_is_absent(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    monkeypatch.setattr(docker_engine, "docker_facts", lambda answers=None: STOPPED)
    daemon = next(c for c in doctor.docker_checks() if c.name == "Docker daemon")
    assert not daemon.ok and f"`{docker_start_command(False)}`" in daemon.detail


def test_setup_acts_on_the_doctors_decision_and_starts_dockerd_as_it_says() -> None:
    setup = (REPO / "scripts" / "setup").read_text()
    assert ".venv/bin/python -m harness.doctor docker-action" in setup
    assert docker_start_command(False).removesuffix(" &") in setup
    assert "systemctl start docker" in setup and "apt_install docker.io" in setup
    assert "conntrack" in setup  # benchmarks/soak.py counts with conntrack -C


def test_module_entry_point_prints_an_action_word(capsys) -> None:
    assert doctor.main(["docker-action"]) == 0
    assert capsys.readouterr().out.strip() in typing.get_args(DockerAction)
    assert doctor.main(["nonsense"]) == 2
