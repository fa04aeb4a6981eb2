"""The line between the runtime and the service's own code: the runtime imports nothing from
``service/``, so the example can be replaced and a runtime fix carried over without conflicts."""

from __future__ import annotations

import ast
from pathlib import Path

import {{ cookiecutter.package }}

PACKAGE = Path({{ cookiecutter.package }}.__file__).parent
NAME = {{ cookiecutter.package }}.__name__


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, as an absolute dotted name."""
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
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


def test_the_runtime_imports_nothing_from_the_service() -> None:
    files = sorted((PACKAGE / "runtime").rglob("*.py"))
    assert len(files) >= 10
    service = f"{NAME}.service"
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(
            m for m in imported_modules(path) if m == service or m.startswith(service + ".")
        )
        for path in files
    }
    assert {path: modules for path, modules in offenders.items() if modules} == {}


def test_the_check_resolves_relative_imports() -> None:
    sample = PACKAGE / "runtime" / "amqp" / "broker.py"
    modules = imported_modules(sample)
    assert f"{NAME}.runtime.messaging" in modules  # from ..messaging import
    assert f"{NAME}.settings" in modules  # from ...settings import
