"""The shape every context copies (issue 9): its domain errors in its own
errors.py, each with a code of its own, and modules that import each other
without cycles (the catalog's own structure test says more about it)."""

import ast
import importlib
import inspect
from pathlib import Path

import pytest

from apps.core.errors import DomainError

CONTEXTS = ["users", "products", "orders"]


def _modules(context: str) -> dict[str, ast.Module]:
    package = Path(importlib.import_module(f"apps.{context}").__file__).parent
    return {
        path.stem: ast.parse(path.read_text())
        for path in package.glob("*.py")
        if path.stem != "__init__"
    }


def _own_imports(context: str, tree: ast.Module) -> set[str]:
    """Sibling modules imported at any depth (a lazy import is still a
    dependency)."""
    package = f"apps.{context}"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == package:
                found |= {alias.name for alias in node.names}
            elif node.module.startswith(f"{package}."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(f"{package}."):
                    found.add(alias.name.split(".")[2])
    return found


@pytest.mark.parametrize("context", CONTEXTS)
def test_modules_import_each_other_without_cycles(context):
    modules = _modules(context)
    graph = {
        name: _own_imports(context, tree) & modules.keys()
        for name, tree in modules.items()
    }
    cycles = set()

    def visit(name, path):
        for imported in sorted(graph[name]):
            if imported in path:
                cycles.add(" -> ".join([*path[path.index(imported) :], imported]))
            else:
                visit(imported, [*path, imported])

    for name in sorted(graph):
        visit(name, [name])

    assert cycles == set()


@pytest.mark.parametrize("context", CONTEXTS)
def test_every_domain_error_lives_in_errors_with_a_code_of_its_own(context):
    package = f"apps.{context}"
    defined = {
        cls
        for name in _modules(context)
        for _, cls in inspect.getmembers(
            importlib.import_module(f"{package}.{name}"), inspect.isclass
        )
        if issubclass(cls, DomainError) and cls.__module__.startswith(package)
    }

    assert defined
    assert {cls.__module__ for cls in defined} == {f"{package}.errors"}
    assert all("code" in vars(cls) for cls in defined)
    assert len({cls.code for cls in defined}) == len(defined)
