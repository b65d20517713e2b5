"""Every end-to-end module carries `pytestmark = pytest.mark.e2e`, and the marker is
registered, so `-m e2e` / `-m "not e2e"` select exactly the tests that build namespaces."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
E2E_MODULES = sorted((REPO / "tests" / "e2e").glob("test_*.py"))


def _is_e2e_mark(node: ast.expr) -> bool:
    """`pytest.mark.e2e`, alone or in a list/tuple of marks."""
    if isinstance(node, ast.List | ast.Tuple):
        return any(_is_e2e_mark(item) for item in node.elts)
    return ast.unparse(node) == "pytest.mark.e2e"


def _module_marked_e2e(path: Path) -> bool:
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets
        ):
            return _is_e2e_mark(node.value)
    return False


def test_there_are_e2e_modules_to_check() -> None:
    assert len(E2E_MODULES) >= 20


def test_every_e2e_module_is_marked_e2e() -> None:
    unmarked = [p.name for p in E2E_MODULES if not _module_marked_e2e(p)]
    assert unmarked == [], f"add `pytestmark = pytest.mark.e2e` to {unmarked}"


def test_the_e2e_marker_is_registered() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    markers = config["tool"]["pytest"]["ini_options"]["markers"]
    assert any(m.split(":")[0].strip() == "e2e" for m in markers)


def test_the_checker_tells_marked_from_unmarked() -> None:
    assert _is_e2e_mark(ast.parse("[pytest.mark.e2e, pytest.mark.slow]", mode="eval").body)
    assert not _is_e2e_mark(ast.parse("pytest.mark.slow", mode="eval").body)
