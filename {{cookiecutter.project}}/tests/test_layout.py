"""The line between the template's code and the team's: the runtime imports nothing outside
itself, and the runtime's tests nothing from ``service/``, so the example can be replaced and a
template update carried over without conflicts."""

from __future__ import annotations

import ast
from pathlib import Path

import {{ cookiecutter.package }}

PACKAGE = Path({{ cookiecutter.package }}.__file__).parent
NAME = {{ cookiecutter.package }}.__name__
TESTS = Path(__file__).resolve().parent


def imported_modules(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module ``path`` imports, as an absolute dotted name; ``root`` holds its package."""
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def package_imports(paths: list[Path], root: Path = PACKAGE.parent) -> dict[str, list[str]]:
    """For each file, the modules of this package it imports."""
    return {
        str(path.relative_to(root)): sorted(
            m for m in imported_modules(path, root) if m == NAME or m.startswith(NAME + ".")
        )
        for path in paths
    }


def test_the_runtime_imports_nothing_but_the_runtime() -> None:
    # Not service/, and not app.py or settings.py, which import service/.
    files = sorted((PACKAGE / "runtime").rglob("*.py"))
    assert len(files) >= 10
    runtime = f"{NAME}.runtime"
    outside = {
        path: [m for m in modules if m != runtime and not m.startswith(runtime + ".")]
        for path, modules in package_imports(files).items()
    }
    assert {path: modules for path, modules in outside.items() if modules} == {}


def test_the_runtime_tests_import_nothing_from_the_service() -> None:
    # They run on tests/sample.py, so a team can replace the example and keep them.
    files = sorted(TESTS.glob("*.py"))
    assert len(files) >= 10
    service = f"{NAME}.service"
    found = {
        path: [m for m in modules if m == service or m.startswith(service + ".")]
        for path, modules in package_imports(files, TESTS.parent).items()
    }
    assert {path: modules for path, modules in found.items() if modules} == {}


def test_the_check_resolves_relative_imports() -> None:
    modules = imported_modules(PACKAGE / "runtime" / "amqp" / "broker.py")
    assert f"{NAME}.runtime.dispatch" in modules  # from ..dispatch import
    assert f"{NAME}.runtime.settings.RuntimeSettings" in modules  # from ..settings import
    assert f"{NAME}.service" in imported_modules(PACKAGE / "app.py")  # from . import service
