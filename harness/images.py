"""The Docker backend's images: one shared node image, built from docker/node/Dockerfile.

The node image's tag carries a hash of its Dockerfile and package list, so an edit is a missing
image (rebuilt on the next run) and an unchanged one is never built twice. Its base,
debian:bookworm-slim, is pulled when a registry answers; with none (an offline daemon) it is
made once from Debian's own packages: debootstrap a minimal bookworm root and `docker import`
it under the same tag, so the Dockerfile never changes between the two paths.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import docker_engine

REPO = Path(__file__).resolve().parent.parent
DOCKER_DIR = REPO / "docker"
NODE_DIR = DOCKER_DIR / "node"
NODE_FILES = ("Dockerfile", "debian-packages.txt")  # what the image is built from: its tag
BASE_IMAGE = os.environ.get("GATECRASH_BASE_IMAGE", "debian:bookworm-slim")
DEBIAN_MIRROR = os.environ.get("GATECRASH_DEBIAN_MIRROR", "http://deb.debian.org/debian")
LABEL = "org.gatecrash.image"
BUILD_TIMEOUT_S = 1800

Report = Callable[[str], None]


class DockerUnavailable(RuntimeError):
    """The Docker daemon cannot be reached; the message says what to do."""


class ImagesMissing(RuntimeError):
    """An image is absent and cannot be made here; the message says what to do."""


def node_image() -> str:
    """gatecrash/node:<hash of the Dockerfile and base> (override: GATECRASH_NODE_IMAGE)."""
    if override := os.environ.get("GATECRASH_NODE_IMAGE"):
        return override
    digest = hashlib.sha256(
        b"".join((NODE_DIR / name).read_bytes() for name in NODE_FILES) + BASE_IMAGE.encode()
    )
    return f"gatecrash/node:{digest.hexdigest()[:12]}"


def connect(timeout: float = 60.0) -> Any:
    """A docker SDK client whose daemon answered a ping (DockerUnavailable otherwise)."""
    from docker.errors import DockerException

    import docker

    where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        remedy = docker_engine.docker_remedy(docker_engine.docker_facts(answers=False))
        raise DockerUnavailable(
            f"cannot reach the Docker daemon at {where} ({_short(exc)}): {remedy}; "
            "or run with --backend netns"
        ) from None
    return client


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1][:200] if text else type(exc).__name__


def has_image(client: Any, tag: str) -> bool:
    from docker.errors import ImageNotFound

    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def missing_images(client: Any) -> list[str]:
    return [tag for tag in (node_image(),) if not has_image(client, tag)]


@dataclass
class BuildReport:
    """What `ensure_images` did, with times in seconds and sizes in bytes."""

    base: str = "present"  # present | pulled | debootstrap
    base_s: float = 0.0
    node: str = "present"  # present | built
    node_s: float = 0.0
    sizes: dict[str, int] = field(default_factory=dict)


def ensure_base(client: Any, report: Report, result: BuildReport) -> None:
    """debian:bookworm-slim: already here, else pulled, else made with debootstrap."""
    from docker.errors import APIError, DockerException

    if has_image(client, BASE_IMAGE):
        return
    start = time.monotonic()
    report(f"pulling {BASE_IMAGE}")
    try:
        repo, _, tag = BASE_IMAGE.rpartition(":")
        client.images.pull(repo, tag=tag)
        result.base, result.base_s = "pulled", time.monotonic() - start
        return
    except (APIError, DockerException) as exc:
        report(f"no registry ({_short(exc)}); making {BASE_IMAGE} with debootstrap")
    debootstrap = shutil.which("debootstrap")
    if debootstrap is None:
        raise ImagesMissing(
            f"{BASE_IMAGE} cannot be pulled (no registry) and debootstrap is not installed: "
            "install the Debian package 'debootstrap' (it makes the base from "
            f"{DEBIAN_MIRROR}), or `docker load` a {BASE_IMAGE} image, then run "
            "`gatecrash images build`"
        )
    _debootstrap_import(debootstrap, report)
    result.base, result.base_s = "debootstrap", time.monotonic() - start


def _debootstrap_import(debootstrap: str, report: Report) -> None:
    suite = BASE_IMAGE.split(":")[-1].split("-")[0] or "bookworm"
    with tempfile.TemporaryDirectory(prefix="gatecrash-base-") as tmp:
        root = Path(tmp) / "root"
        report(f"debootstrap --variant=minbase {suite} ({DEBIAN_MIRROR})")
        proc = subprocess.run(
            [debootstrap, "--variant=minbase", suite, str(root), DEBIAN_MIRROR],
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise ImagesMissing(
                f"debootstrap of {suite} from {DEBIAN_MIRROR} failed ({proc.returncode}); "
                f"check that the mirror is reachable (GATECRASH_DEBIAN_MIRROR):\n{tail}"
            )
        report(f"docker import {BASE_IMAGE}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        try:
            _import(tar, BASE_IMAGE)
        finally:
            tar.kill()
            tar.wait()


def _import(tar: subprocess.Popen, tag: str) -> None:
    """`docker import` of tar's stdout, streamed (the root is ~200 MB)."""
    client = connect(timeout=BUILD_TIMEOUT_S)
    repo, _, version = tag.rpartition(":")
    client.api.import_image(
        src=tar.stdout,
        repository=repo,
        tag=version,
        changes=['CMD ["bash"]', f'LABEL {LABEL}="base"'],
        stream_src=True,
    )
    if not has_image(client, tag):
        raise ImagesMissing(f"docker import did not produce {tag}")


def build_node(client: Any, report: Report, result: BuildReport, nocache: bool = False) -> None:
    """`docker build` of docker/node with the classic builder (works on every daemon);
    `nocache` re-runs every step (fresh Debian packages), else cached layers are reused."""
    from docker.errors import APIError

    tag = node_image()
    old = client.images.get(tag).id if has_image(client, tag) else None
    start = time.monotonic()
    report(f"building {tag}")
    low = connect(timeout=BUILD_TIMEOUT_S).api
    error = None
    try:
        for chunk in low.build(
            path=str(NODE_DIR),
            tag=tag,
            rm=True,
            forcerm=True,
            nocache=nocache,
            decode=True,
            buildargs={"BASE": BASE_IMAGE},
            labels={LABEL: "node"},
        ):
            if "error" in chunk:
                error = chunk["error"].strip()
            line = (chunk.get("stream") or chunk.get("status") or "").strip()
            if line:
                report(line[:150])
    except APIError as exc:
        error = _short(exc)
    if error or not has_image(client, tag):
        raise ImagesMissing(
            f"building {tag} from {NODE_DIR}/Dockerfile failed: {error or 'no image'}; its "
            "RUN step installs Debian packages, so the daemon's build containers need to "
            "reach a Debian mirror (see docker/README.md)"
        )
    result.node, result.node_s = "built", time.monotonic() - start
    if old and old != client.images.get(tag).id:
        with contextlib.suppress(APIError):  # in use by a container: Docker keeps it
            client.images.remove(old)  # the replaced image would linger untagged


def ensure_images(report: Report | None = None, rebuild: bool = False) -> BuildReport:
    """Make every image the Docker backend needs; `rebuild` builds the node image anew,
    without the layer cache."""
    say = report or (lambda line: None)
    client = connect()
    result = BuildReport()
    if rebuild or missing_images(client):
        ensure_base(client, say, result)
        build_node(client, say, result, nocache=rebuild)
    for tag in (BASE_IMAGE, node_image()):
        if has_image(client, tag):
            result.sizes[tag] = client.images.get(tag).attrs.get("Size", 0)
    return result


def ensure_images_with_progress(console: Any, rebuild: bool = False) -> BuildReport:
    """ensure_images with a live line of what is happening (rich), for the CLI."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    progress = Progress(
        SpinnerColumn(),
        TextColumn("[bold]images[/]"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("checking", total=None)
        return ensure_images(
            lambda line: progress.update(task, description=line.replace("[", "\\[")), rebuild
        )
