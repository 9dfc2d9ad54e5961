"""The catalog's module structure: one home for its errors, no import
cycles between its modules (the orders context copies this shape)."""

import ast
import importlib
import inspect
from pathlib import Path

import apps.products
from apps.core.errors import DomainError

PACKAGE = Path(apps.products.__file__).parent


def _modules() -> dict[str, ast.Module]:
    return {
        path.stem: ast.parse(path.read_text())
        for path in PACKAGE.glob("*.py")
        if path.stem != "__init__"
    }


def _own_imports(tree: ast.Module) -> set[str]:
    """The sibling modules a module imports, at any depth (function-level
    imports included: a lazy import is still a dependency)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "apps.products":
                found |= {alias.name for alias in node.names}
            elif node.module.startswith("apps.products."):
                found.add(node.module.split(".")[2])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("apps.products."):
                    found.add(alias.name.split(".")[2])
    return found


def test_catalog_modules_import_each_other_without_cycles():
    modules = _modules()
    graph = {
        name: _own_imports(tree) & modules.keys() for name, tree in modules.items()
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


def test_interface_imports_at_module_level_only():
    tree = _modules()["interface"]
    nested = [
        node.lineno
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, (ast.Import, ast.ImportFrom))
    ]

    assert nested == []


def test_every_catalog_domain_error_lives_in_errors_with_its_own_code():
    defined = {
        cls
        for name in _modules()
        for _, cls in inspect.getmembers(
            importlib.import_module(f"apps.products.{name}"), inspect.isclass
        )
        if issubclass(cls, DomainError) and cls.__module__.startswith("apps.products")
    }

    assert {cls.__module__ for cls in defined} == {"apps.products.errors"}
    assert {cls.__name__ for cls in defined} >= {
        "ProductNotFound",
        "ProductConflict",
        "ProductChanged",
        "InsufficientStock",
        "ReservationNotFound",
        "ReservationConflict",
    }
    # A code of its own, declared on the class, and no two alike.
    assert all("code" in vars(cls) for cls in defined)
    assert len({cls.code for cls in defined}) == len(defined)


def test_interface_re_exports_the_errors_callers_may_catch():
    errors = importlib.import_module("apps.products.errors")
    interface = importlib.import_module("apps.products.interface")
    for name in (
        "ProductNotFound",
        "InsufficientStock",
        "ReservationNotFound",
        "ReservationConflict",
    ):
        assert getattr(interface, name) is getattr(errors, name)


def _functions(tree: ast.Module) -> set[str]:
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_reservations_and_search_have_modules_of_their_own():
    modules = _modules()
    reservation_use_cases = {
        "stock_reserve",
        "stock_release",
        "stock_commit",
        "reservations_release_expired",
        "reservations_repair_interrupted",
    }

    assert reservation_use_cases <= _functions(modules["reservations"])
    assert not reservation_use_cases & _functions(modules["services"])
    assert "product_search" in _functions(modules["search"])
    assert "product_search" not in _functions(modules["selectors"])


def test_domain_modules_import_no_rest_framework():
    domain = ("models", "errors", "db", "services", "reservations", "selectors")
    domain += ("search", "interface")
    imported = {
        (name, alias.name if isinstance(node, ast.Import) else node.module)
        for name in domain
        for node in ast.walk(_modules()[name])
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }

    assert {
        (n, m) for n, m in imported if m and m.startswith("rest_framework")
    } == set()


def test_every_interface_function_documents_args_returns_and_raises():
    interface = importlib.import_module("apps.products.interface")
    functions = [
        obj
        for name, obj in inspect.getmembers(interface, inspect.isfunction)
        if obj.__module__ == interface.__name__ and not name.startswith("_")
    ]
    undocumented = [
        f.__name__
        for f in functions
        if not all(
            section in (f.__doc__ or "") for section in ("Args:", "Returns:", "Raises:")
        )
    ]

    assert {f.__name__ for f in functions} >= {"return_stock", "release_stock"}
    assert undocumented == []
