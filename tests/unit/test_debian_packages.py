"""One list of Debian packages for every trial host (docker/node/debian-packages.txt): the
node image and scripts/setup both install it, and every program an app or a tool declares
(`binaries`: program -> package) comes from a package on it."""

from __future__ import annotations

import re

from harness import registry
from tests.conftest import REPO

LIST = REPO / "docker" / "node" / "debian-packages.txt"


def _listed() -> set[str]:
    return {p for line in LIST.read_text().splitlines() for p in line.split("#")[0].split()}


def test_setup_and_the_node_image_both_install_the_list() -> None:
    dockerfile = (REPO / "docker" / "node" / "Dockerfile").read_text()
    assert "COPY debian-packages.txt" in dockerfile
    assert "$(sed 's/#.*//' /tmp/debian-packages.txt)" in dockerfile
    setup = (REPO / "scripts" / "setup").read_text()
    assert "docker/node/debian-packages.txt" in setup and '"${NODE_PACKAGES[@]}"' in setup
    names = _listed()
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+", name) for name in names), names


def test_every_declared_program_comes_from_a_listed_package() -> None:
    listed = _listed()
    declared = {f"app {name}": registry.app_class(name).binaries for name in registry.APPS} | {
        f"tool {name}": registry.load(registry.TOOLS, name).binaries
        for name, entry in registry.TOOLS.items()
        if not entry.startswith(registry.MANIFEST_PREFIX)
    }
    for who, binaries in declared.items():
        for program, package in binaries.items():
            assert package in listed, f"{who} runs {program} from {package}, not in {LIST.name}"
