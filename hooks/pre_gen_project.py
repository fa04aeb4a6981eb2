"""Checks the answers before cookiecutter writes a file; a bad one stops generation.

Cookiecutter runs this file after rendering it with Jinja. The answers arrive as one JSON string
(``tojson`` twice makes a valid Python string literal), so a quote or a backslash in an answer is
data, never code. The checks are plain functions, so the template's tests import and call them.
"""

from __future__ import annotations

import json
import keyword
import re
import sys
from collections.abc import Callable
from typing import Any

PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")

# Import names the generated service depends on, or that its layout already uses.
TAKEN_IMPORT_NAMES = frozenset(
    {
        "aio_pika", "aiohappyeyeballs", "aiohttp", "aiormq", "aiosignal", "annotated_types",
        "coverage", "dotenv", "frozenlist", "hatchling", "idna", "multidict", "mypy", "pamqp",
        "prometheus_client", "propcache", "pydantic", "pydantic_core", "pydantic_settings",
        "pytest", "pytest_aiohttp", "pytest_asyncio", "pythonjsonlogger", "ruff", "tests",
        "typing_extensions", "uv", "yarl",
    }
)  # fmt: skip

# Names longer than these would push generated lines past the linters' line length.
PROJECT = re.compile(r"(?=.{1,32}$)[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
PACKAGE = re.compile(r"(?=.{1,32}$)[a-z][a-z0-9_]*")
EXCHANGE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def _name(name: str) -> str | None:
    return None if name.strip() else "name is empty; give the service a name"


def _project(project: str) -> str | None:
    if PROJECT.fullmatch(project):
        return None
    return (
        f"project {project!r} is not a valid folder and distribution name: use up to 32 "
        "lower-case letters, digits and single hyphens, starting with a letter "
        "(e.g. measurement-service)"
    )


def _package(package: str) -> str | None:
    if not PACKAGE.fullmatch(package) or not package.isidentifier():
        return (
            f"package {package!r} is not a valid import name: use up to 32 lower-case letters, "
            "digits and underscores, starting with a letter (e.g. measurement_service)"
        )
    if keyword.iskeyword(package) or keyword.issoftkeyword(package):
        return f"package {package!r} is a Python keyword; choose another import name"
    if package in sys.stdlib_module_names:
        return (
            f"package {package!r} would shadow the standard library module {package}; "
            "choose another import name"
        )
    if package in TAKEN_IMPORT_NAMES:
        return (
            f"package {package!r} would shadow a module the service depends on; "
            "choose another import name"
        )
    return None


def _http_port(port: str) -> str | None:
    if port.isdigit() and 1 <= int(port) <= 65535:
        return None
    return f"http_port {port!r} is not a TCP port: use a whole number from 1 to 65535"


def _exchange(exchange: str) -> str | None:
    if EXCHANGE.fullmatch(exchange) and not exchange.startswith("amq."):
        return None
    return (
        f"exchange {exchange!r} is not a usable AMQP exchange name: use up to 64 letters, "
        "digits and - _ . : only, and not the reserved prefix amq."
    )


def _python_version(python: str) -> str | None:
    if python in PYTHON_VERSIONS:
        return None
    return f"python_version {python!r} is not supported: choose one of {', '.join(PYTHON_VERSIONS)}"


# One check per answer. copier.yml calls them too (through local_extensions.answer_problem), so
# both tools reject the same answers with the same sentences.
CHECKS: dict[str, Callable[[str], str | None]] = {
    "name": _name,
    "project": _project,
    "package": _package,
    "http_port": _http_port,
    "exchange": _exchange,
    "python_version": _python_version,
}


def problem(question: str, answer: Any) -> str | None:
    """The sentence saying why ``answer`` to ``question`` cannot make a working service, or None."""
    check = CHECKS.get(question)
    return None if check is None else check(str(answer))


def problems(answers: dict[str, Any]) -> list[str]:
    """One sentence for each answer that cannot make a working service."""
    found = (problem(question, answers.get(question, "")) for question in CHECKS)
    return [sentence for sentence in found if sentence is not None]


def main(answers: dict[str, Any]) -> int:
    """Print one line per problem on stderr; return the exit status."""
    found = problems(answers)
    for problem in found:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(json.loads({{cookiecutter | tojson | tojson}})))  # noqa: F821
