"""The pre-generation hook stops bad answers before a file is written; the post-generation hook
prints the next steps."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cookiecutter.exceptions import FailedHookException

from .conftest import TEMPLATE, bake


def load_hook(name: str) -> ModuleType:
    # The hook is importable as it stands in the repo: its Jinja line runs only as a script.
    spec = importlib.util.spec_from_file_location(name, TEMPLATE / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pre_gen = load_hook("pre_gen_project")
post_gen = load_hook("post_gen_project")

GOOD: dict[str, Any] = {
    "name": "Measurement Service",
    "project": "measurement-service",
    "package": "measurement_service",
    "http_port": "8080",
    "exchange": "events",
    "python_version": "3.11",
}

REJECTED = [
    ("project", "", "project ''"),
    ("project", "2fast", "not a valid folder"),
    ("project", "Measurement-Service", "not a valid folder"),
    ("project", "my service", "not a valid folder"),
    ("project", "a/b", "not a valid folder"),
    ("project", "a\\b", "not a valid folder"),
    ("project", "..", "not a valid folder"),
    ("project", "../up", "not a valid folder"),
    ("project", "/abs", "not a valid folder"),
    ("project", "a" * 33, "not a valid folder"),
    ("package", "", "not a valid import name"),
    ("package", "9lives", "not a valid import name"),
    ("package", "Measurement", "not a valid import name"),
    ("package", "has-hyphen", "not a valid import name"),
    ("package", "has space", "not a valid import name"),
    ("package", "a" * 33, "not a valid import name"),
    ("package", "class", "Python keyword"),
    ("package", "match", "Python keyword"),
    ("package", "asyncio", "standard library module asyncio"),
    ("package", "json", "standard library module json"),
    ("package", "aiohttp", "module the service depends on"),
    ("package", "aio_pika", "module the service depends on"),
    ("package", "pydantic", "module the service depends on"),
    ("package", "tests", "module the service depends on"),
    ("http_port", "0", "not a TCP port"),
    ("http_port", "65536", "not a TCP port"),
    ("http_port", "-1", "not a TCP port"),
    ("http_port", "http", "not a TCP port"),
    ("exchange", "", "exchange ''"),
    ("exchange", "amq.topic", "reserved prefix"),
    ("exchange", "with space", "not a usable AMQP exchange"),
    ("exchange", "e" * 65, "not a usable AMQP exchange"),
    ("name", "   ", "name is empty"),
]


def test_default_answers_pass() -> None:
    assert pre_gen.problems(GOOD) == []


def test_unsupported_python_is_named_by_the_hook_and_refused_by_cookiecutter(
    tmp_path: Path,
) -> None:
    [problem] = pre_gen.problems({**GOOD, "python_version": "3.10"})
    assert "python_version '3.10' is not supported" in problem
    # A choice answer outside the list never reaches the hook: cookiecutter refuses it first.
    with pytest.raises(ValueError, match="choice"):
        bake(tmp_path, python_version="3.10")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("field", "value", "message"), REJECTED)
def test_hook_names_the_bad_answer(field: str, value: str, message: str) -> None:
    found = pre_gen.problems({**GOOD, field: value})
    assert len(found) == 1
    assert message in found[0]


@pytest.mark.parametrize(("field", "value", "message"), REJECTED)
def test_bad_answer_stops_generation_leaving_nothing(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], field: str, value: str, message: str
) -> None:
    answers = {**GOOD, field: value}  # every other answer good, so this one alone is at fault
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)
    assert list(tmp_path.iterdir()) == []
    assert list(tmp_path.parent.glob("up*")) == []  # "../up" did not escape either
    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert message in errors[0]


def test_main_prints_one_line_per_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert pre_gen.main({**GOOD, "http_port": "99999", "package": "json"}) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2
    assert all(line.startswith("error: ") for line in lines)
    assert pre_gen.main(GOOD) == 0


def test_post_gen_prints_the_next_steps(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    bake(tmp_path, project="order-desk", package="orders")  # the same hook, other answers
    out = capfd.readouterr().out
    assert "cd order-desk" in out
    assert "uv run order-desk --amqp-url memory://" in out
    assert "uv run pytest" in out
    assert post_gen.next_steps({"project": "x", "package": "y"}).count("\n") > 3
