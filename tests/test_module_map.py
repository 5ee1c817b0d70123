"""The dependency directions of the README's module map, checked on every import statement
(module level and inside functions) of each package's source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "sharewise"


def _imports(path: Path) -> set[str]:
    """The ``sharewise.<package>`` names a file or folder imports (relative imports resolved)."""
    files = sorted(path.rglob("*.py")) if path.is_dir() else [path]
    found = set()
    for f in files:
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found |= {n.split(".")[1] for n in names if n.startswith("sharewise.") and n.count(".") >= 1}
    return found


@pytest.mark.parametrize(("part", "forbidden"), [
    ("sharing", {"data", "training", "runner", "cli", "pipelines"}),
    ("components", {"sharing", "data", "training", "reporting", "runner", "cli"}),
    ("analysis", {"sharing", "data", "training", "reporting", "runner", "cli"}),
    ("training", {"reporting", "runner", "cli", "pipelines"}),
    ("runner.py", {"reporting", "cli", "pipelines"}),
    ("registry.py", {"sharing", "data", "training", "reporting", "config"}),
    ("options.py", {"sharing", "data", "training", "reporting", "config", "registry"}),
])
def test_a_package_does_not_import_what_the_module_map_forbids(part: str, forbidden: set[str]) -> None:
    assert not _imports(PKG / part) & forbidden, sorted(_imports(PKG / part) & forbidden)
