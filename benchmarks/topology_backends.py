"""Benchmark (not a test): topology up+down per backend, side by side, and the images.

    .venv/bin/python benchmarks/topology_backends.py [--rounds 5] [--build] [--base]

Each round builds the standard trial topology (client, resolver, censor, voip, chat, proxy,
dns, front) and tears it down again, alternating netns and docker so that load from other
work on the machine hits both alike. Target: docker <= 3 s up+down with the images present.
`--build` times a node image build without the layer cache (the first build on a fresh
machine, base present); `--base` times making the offline base (debootstrap + docker import)
under a throwaway tag. Needs root and Docker.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from harness import images
from harness.topology.addressing import AddressPool
from harness.topology.docker import DockerTopology
from harness.topology.netns import NetnsTopology


def one_round(backend: type, workdir: Path) -> tuple[float, float]:
    topo = backend(f"b{os.getpid() % 100000}", 0, AddressPool().acquire(), workdir)
    start = time.monotonic()
    topo.up()
    up = time.monotonic() - start
    start = time.monotonic()
    topo.down()
    return up, time.monotonic() - start


def time_node_build() -> float:
    result = images.BuildReport()
    images.build_node(images.connect(), lambda line: None, result, nocache=True)
    return result.node_s


def time_base() -> float:
    import shutil

    tag = "gatecrash-bench/base:tmp"
    original = images.BASE_IMAGE
    images.BASE_IMAGE = tag.replace("tmp", "bookworm")  # suite name comes from the tag
    start = time.monotonic()
    try:
        images._debootstrap_import(shutil.which("debootstrap") or "debootstrap", lambda s: None)
    finally:
        images.BASE_IMAGE = original
    took = time.monotonic() - start
    images.connect().images.remove(tag.replace("tmp", "bookworm"), force=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--build", action="store_true", help="time a cold node image build")
    parser.add_argument("--base", action="store_true", help="time debootstrap + import")
    args = parser.parse_args()

    prepared = images.ensure_images()
    client = images.connect()
    node = images.node_image()
    base_mb = prepared.sizes.get(images.BASE_IMAGE, 0) / 1e6
    print(f"images: base {images.BASE_IMAGE} {base_mb:.0f} MB, "
          f"node {node} {prepared.sizes.get(node, 0) / 1e6:.0f} MB")  # fmt: skip
    if args.base:
        print(f"offline base (debootstrap --variant=minbase + docker import): {time_base():.1f} s")
    if args.build:
        took = time_node_build()
        size = client.images.get(node).attrs["Size"] / 1e6
        print(f"node image build, no cache, base present: {took:.1f} s, {size:.0f} MB")

    times: dict[str, list[tuple[float, float]]] = {"netns": [], "docker": []}
    with tempfile.TemporaryDirectory(prefix="gc-bench-") as tmp:
        for i in range(args.rounds):
            for name, backend in (("netns", NetnsTopology), ("docker", DockerTopology)):
                workdir = Path(tmp) / f"{name}-{i}"
                workdir.mkdir()
                times[name].append(one_round(backend, workdir))

    print(f"\ntopology up+down, {args.rounds} rounds (8 hosts), seconds:")
    print(f"{'backend':8} {'up med':>8} {'down med':>9} {'total med':>10} {'total min':>10}")
    totals = {}
    for name, rounds in times.items():
        total = [u + d for u, d in rounds]
        totals[name] = statistics.median(total)
        print(f"{name:8} {statistics.median(u for u, _ in rounds):8.2f} "
              f"{statistics.median(d for _, d in rounds):9.2f} {totals[name]:10.2f} "
              f"{min(total):10.2f}")  # fmt: skip
    ratio = totals["docker"] / totals["netns"]
    verdict = "meets" if totals["docker"] <= 3.0 else "misses"
    print(f"docker / netns: {ratio:.1f}x; docker {verdict} the 3 s target")


if __name__ == "__main__":
    main()
