"""The public API: what each audience may import, and that the docs list all of it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import dyntoolset
import dyntoolset.plugin
import dyntoolset.testing

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
PLUGIN_SOURCES = sorted((ROOT / "plugins").glob("*/src/**/*.py"))
PLUGIN_TESTS = sorted((ROOT / "plugins").glob("*/tests/**/*.py"))


def dyntoolset_imports(path: Path) -> set[str]:
    """Every ``dyntoolset...`` module ``path`` imports (``from X import`` and ``import X``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(n for n in names if n == "dyntoolset" or n.startswith("dyntoolset."))
    return found


@pytest.mark.parametrize(
    ("module", "names"),
    [(dyntoolset, dyntoolset.__all__), (dyntoolset.plugin, dyntoolset.plugin.__all__)],
)
def test_every_exported_name_exists_and_is_documented(module: object, names: list[str]) -> None:
    assert names == sorted(set(names), key=names.index)  # no duplicates
    for name in names:
        assert hasattr(module, name), name
        if name != "__version__":
            assert re.search(rf"`{re.escape(name)}`", ARCHITECTURE), (
                f"{name} is exported but docs/architecture.md's public API does not list it"
            )


def test_the_plugin_packages_import_only_the_plugin_api() -> None:
    assert PLUGIN_SOURCES, "no plugin sources found"
    for path in PLUGIN_SOURCES:
        assert dyntoolset_imports(path) <= {"dyntoolset.plugin"}, path


def test_plugin_tests_use_only_public_modules() -> None:
    allowed = {"dyntoolset", "dyntoolset.plugin", "dyntoolset.testing"}
    for path in PLUGIN_TESTS:
        assert dyntoolset_imports(path) <= allowed, (path, dyntoolset_imports(path) - allowed)


def test_the_embedder_api_holds_no_plugin_author_internals() -> None:
    # Authors' base classes live in dyntoolset.plugin; the embedder's module does not
    # mix them in (an embedder never subclasses Detector to run a cycle).
    for name in ("Detector", "DetectContext", "Renderer", "hookimpl", "InvalidService"):
        assert name not in dyntoolset.__all__
