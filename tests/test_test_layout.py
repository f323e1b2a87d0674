"""The tests' own layout (issue 21): a test module imports no other test module (shared helpers
and fixtures live in helper modules and conftest.py), and nothing imports a private name of
another module."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            yield node.module, [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []


def _python_files():
    for folder in ("tests", "benchmarks", "training", "serving", "features"):
        yield from (REPO / folder).rglob("*.py")


def test_no_module_imports_a_test_module():
    found = [
        f"{path.relative_to(REPO)} imports {module}"
        for path in _python_files()
        for module, _ in _imports(path)
        if module.startswith("tests.") and module.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert found == []


OWN = ("features", "training", "serving", "tests", "benchmarks")


def test_no_module_imports_a_private_name_of_another():
    """Of the project's own modules (a library's private names are the library's business)."""
    found = [
        f"{path.relative_to(REPO)} imports {name} from {module}"
        for path in _python_files()
        for module, names in _imports(path)
        for name in names
        if module.split(".")[0] in OWN and name.startswith("_") and not name.startswith("__")
    ]
    assert found == []


def test_the_sweep_sees_a_test_module_import(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from tests.serving.test_fuzz import x\nfrom a.b import _private\n")
    assert list(_imports(probe)) == [("tests.serving.test_fuzz", ["x"]), ("a.b", ["_private"])]
