"""The catalog's module structure: its errors, reservations and search in
modules of their own (errors' home and import cycles are checked for every
context in tests/test_context_structure.py)."""

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


def test_the_catalog_errors_are_the_ones_callers_know():
    # Each in errors.py with a code of its own, no import cycles:
    # tests/test_context_structure.py, for every context.
    defined = {
        cls.__name__
        for _, cls in inspect.getmembers(
            importlib.import_module("apps.products.errors"), inspect.isclass
        )
        if issubclass(cls, DomainError) and cls.__module__ == "apps.products.errors"
    }

    assert defined >= {
        "ProductNotFound",
        "ProductConflict",
        "ProductChanged",
        "InsufficientStock",
        "ReservationNotFound",
        "ReservationConflict",
    }


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
