"""The docker backend's pure parts: what a container sees (mounts, environment), image tags,
the CLI's new choices. The containers themselves are tested in tests/e2e/test_docker_backend."""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import pytest

from harness import images
from harness.cli import build_parser
from harness.runner import BACKENDS
from harness.topology.docker import REPO, DockerTopology, passed_env, shared_mounts


def test_environment_passes_the_callers_variables_but_not_the_hosts_paths() -> None:
    env = {"PATH": "/usr/bin", "HOME": "/root", "LD_PRELOAD": "x", "PYTHONUNBUFFERED": "1",
           "GATECRASH_MITM_CONFIG": "/r/c.json", "SSL_CERT_FILE": "/r/ca.pem",
           "DOCKER_HOST": "unix:///x", "PYTEST_CURRENT_TEST": "t"}  # fmt: skip
    assert passed_env(env) == ["GATECRASH_MITM_CONFIG", "PYTHONUNBUFFERED", "SSL_CERT_FILE"]


def test_mounts_share_code_and_python_read_only_and_the_run_read_write(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    mounts, tmpfs = shared_mounts(run_dir)
    by_target = {m["Target"]: m for m in mounts}
    assert by_target[str(REPO)]["ReadOnly"] is True
    assert by_target[str(Path(sys.base_prefix).resolve())]["ReadOnly"] is True
    assert by_target[str(run_dir)]["ReadOnly"] is False
    assert all(m["Source"] == m["Target"] for m in mounts), "same paths inside as outside"
    # the current directory (not under any mount) exists inside, for relative paths
    assert tmpfs == {str(tmp_path): "size=1m"}


def test_current_directory_inside_a_mount_needs_no_tmpfs(monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    assert shared_mounts(REPO / "results")[1] == {}


def test_node_image_tag_follows_the_dockerfile(monkeypatch, tmp_path) -> None:
    tag = images.node_image()
    assert tag.startswith("gatecrash/node:") and len(tag.split(":")[1]) == 12
    edited = tmp_path / "node"
    edited.mkdir()
    for name in images.NODE_FILES:
        (edited / name).write_text((images.NODE_DIR / name).read_text())
    monkeypatch.setattr(images, "NODE_DIR", edited)
    assert images.node_image() == tag
    for name in images.NODE_FILES:  # the Dockerfile or its package list edited: a new tag
        before = (edited / name).read_text()
        (edited / name).write_text(before + "# x\n")
        assert images.node_image() != tag, name
        (edited / name).write_text(before)
    monkeypatch.setenv("GATECRASH_NODE_IMAGE", "mine:1")
    assert images.node_image() == "mine:1"


def test_no_daemon_is_an_error_that_says_what_to_do(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/none.sock")
    with pytest.raises(images.DockerUnavailable, match="--backend netns"):
        images.connect(timeout=2)


def test_cli_knows_the_docker_backend_and_its_commands() -> None:
    assert BACKENDS["docker"] is DockerTopology
    parser = build_parser()
    assert parser.parse_args(["run", "s.yaml", "--backend", "docker"]).backend == "docker"
    assert parser.parse_args(["images", "build", "--rebuild"]).rebuild is True
    assert parser.parse_args(["doctor"]).func.__name__ == "cmd_doctor"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "s.yaml", "--backend", "podman"])


def test_container_labels_name_run_trial_and_creator(tmp_path) -> None:
    from harness.topology.addressing import AddressPool

    topo = DockerTopology("abc123", 0, AddressPool().acquire(), tmp_path)
    assert topo.labels["org.gatecrash.run"] == "abc123"
    assert topo.labels["org.gatecrash.trial"] == str(tmp_path)
    assert topo.labels["org.gatecrash.pid"] == str(os.getpid())
    assert topo["censor"].container == "gc-abc123-0-censor"
    assert topo["client"].wrap(["true"])[-2:] == ["--", "true"]


def test_a_block_set_aside_is_never_handed_out_again() -> None:
    from harness.topology.addressing import AddressPool

    pool = AddressPool("10.77.0.0/23")  # two blocks
    first = pool.acquire()
    pool.set_aside(first)
    pool.release(first)  # the trial's cleanup still releases it: ignored
    second = pool.acquire()
    assert second.block != first.block
    pool.release(second)
    assert pool.acquire().block == second.block  # an ordinary release is reused


def test_no_role_address_lies_where_docker_hands_out_addresses_of_its_own() -> None:
    """A container of someone else's attached to a trial's network mid-build gets an address
    from the dynamic range, never the censor's or a server's (CI saw it take the censor's)."""
    from harness.topology.addressing import ALL_ROLES, AddressPool, dynamic_range

    addresses = AddressPool().acquire()
    for side, net in (("inside", addresses.inside), ("outside", addresses.outside)):
        dynamic = dynamic_range(net)
        assert dynamic.subnet_of(net) and dynamic.num_addresses >= 32
        for role in ALL_ROLES:
            if role == "censor" or addresses.side(role) == side:
                addr = addresses.addr(role, side if role == "censor" else None)
                assert ipaddress.ip_address(addr) not in dynamic, (role, addr, dynamic)
