"""The site the `web` bystander loads: a page on www and its resources on
static.intranet.corp (the same host) and cdn (another host), as a page pulls its scripts,
styles and images from a few hostnames. Resources are random bytes: their content is no
business of a censor."""

from __future__ import annotations

import os
from pathlib import Path

from harness.topology.base import fqdn

PAGE_HOST, STATIC_HOST, CDN_HOST = fqdn("www"), fqdn("static.intranet.corp"), fqdn("cdn")
KINDS = ("css", "js", "png", "woff2")


def resource_urls(count: int) -> list[str]:
    """The page's resources, alternating between static and cdn."""
    urls = []
    for i in range(count):
        host, folder = (STATIC_HOST, "s") if i % 2 == 0 else (CDN_HOST, "lib")
        urls.append(f"https://{host}/{folder}/r{i}.{KINDS[i % len(KINDS)]}")
    return urls


def page_html(urls: list[str]) -> str:
    links = "\n".join(
        f'  <link rel="stylesheet" href="{u}">' if u.endswith(".css") else f'  <img src="{u}">'
        for u in urls
    )
    head = "<!doctype html>\n<html><head><title>gatecrash</title></head><body>"
    return f"{head}\n{links}\n</body></html>\n"


def write_site(root: Path, count: int, resource_bytes: int) -> tuple[Path, Path]:
    """Write the page and its resources; returns the roots of www+static and of cdn."""
    front, cdn = root / "www", root / "cdn"
    urls = resource_urls(count)
    for url in urls:
        path = url.split("/", 3)[3]
        target = (front if url.startswith(f"https://{STATIC_HOST}/") else cdn) / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(os.urandom(resource_bytes))
    front.mkdir(parents=True, exist_ok=True)
    cdn.mkdir(parents=True, exist_ok=True)
    (front / "index.html").write_text(page_html(urls))
    return front, cdn
