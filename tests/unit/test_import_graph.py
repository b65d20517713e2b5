"""The import graph of harness/, read from the source (every import statement, also those
inside functions; not the TYPE_CHECKING ones): the scenario model, the registry and scoring
are layers that plug-ins build on, so none of them may sit on a cycle with the packages of
plug-ins, and scoring is given what it needs instead of looking it up."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

HARNESS = REPO / "harness"


def _imports(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def _unit(module: str) -> str:
    """harness.apps.sip.app -> harness.apps; harness.scenario -> harness.scenario."""
    return ".".join(module.split(".")[:2])


def _graph(unit=_unit) -> dict[str, set[str]]:
    """unit -> the units it imports (packages by default; `_module` for modules)."""
    graph: dict[str, set[str]] = {}
    for path in HARNESS.rglob("*.py"):
        module = _module(path)
        for name in _imports(path):
            if name.startswith("harness.") and unit(name) != unit(module):
                parts = name.split(".")
                if REPO.joinpath(*parts).with_suffix(".py").exists():
                    graph.setdefault(unit(module), set()).add(unit(name))
                elif REPO.joinpath(*parts).is_dir():
                    graph.setdefault(unit(module), set()).add(unit(f"{name}.__init__"))
    return graph


def _module(path: Path) -> str:
    return ".".join(path.relative_to(REPO).with_suffix("").parts)


def _reaches(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """A path start -> ... -> goal, or None."""
    seen, stack = {start}, [[start]]
    while stack:
        path = stack.pop()
        for nxt in sorted(graph.get(path[-1], ())):
            if nxt == goal:
                return [*path, nxt]
            if nxt not in seen:
                seen.add(nxt)
                stack.append([*path, nxt])
    return None


def test_the_scenario_model_is_on_no_cycle() -> None:
    graph = _graph()
    assert _reaches(graph, "harness.scenario", "harness.scenario") is None


def test_scoring_is_given_kinds_and_imports_no_registry_or_scenario() -> None:
    graph = _graph()
    for layer in ("harness.registry", "harness.scenario", "harness.apps", "harness.tools"):
        assert _reaches(graph, "harness.scoring", layer) is None, layer


def test_the_registry_is_on_no_cycle_of_modules() -> None:
    """The registry names plug-ins by string; no tool module it imports may lead back."""
    graph = _graph(unit=lambda name: name)
    assert _reaches(graph, "harness.registry", "harness.registry") is None


def test_tools_and_apps_never_reach_into_the_scenario_module() -> None:
    graph = _graph()
    for plugins in ("harness.tools", "harness.apps"):
        assert _reaches(graph, plugins, "harness.scenario") is None, plugins


def test_no_cycles_among_harness_packages_or_modules() -> None:
    """Function-local imports do not count as a way out: each cycle was broken by moving
    the shared piece to a module of its own (namespaces, docker_labels, manifests, ...)."""
    for unit in (_unit, lambda name: name):
        graph = _graph(unit=unit)
        cycles = [_reaches(graph, node, node) for node in sorted(graph)]
        assert [c for c in cycles if c] == []
