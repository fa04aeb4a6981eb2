"""Fixtures for the template's tests: baking projects, running their checks, and a RabbitMQ.

``AMQP_URL`` names a RabbitMQ to use; without it one throwaway node is started for the session
(see ``rabbitmq.py``) and stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cookiecutter.main import cookiecutter

from .rabbitmq import RabbitMQUnavailable, ThrowawayRabbitMQ
from .variants import VARIANTS

TEMPLATE = Path(__file__).resolve().parent.parent
FULLY_CHECKED = ["default", "custom"]  # the machine's Python runs these; the rest: static checks


def bake(output: Path, template: Path = TEMPLATE, **answers: Any) -> Path:
    """Render ``template`` with ``answers`` (the rest default) into ``output``; its folder."""
    return Path(
        cookiecutter(
            str(template),
            no_input=True,
            extra_context={key: str(value) for key, value in answers.items()},
            output_dir=str(output),
        )
    )


def copier_copy(
    template: Path, destination: Path, *, check: bool = True, at: str = "HEAD", **answers: Any
) -> subprocess.CompletedProcess[str]:
    """Generate with copier, as a user would: ``answers`` given, the rest default; from the
    template at ``at``. copier's own default is the newest tag; HEAD, with a local template,
    is the working tree as it is, uncommitted changes included."""
    data = [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]
    data += ["--vcs-ref", at]
    command = [
        tool("copier"),
        "copy",
        "--trust",
        "--defaults",
        *data,
        str(template),
        str(destination),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        pytest.fail(f"copier copy failed ({result.returncode}):\n{result.stderr[-6000:]}")
    return result


def tool(name: str) -> str:
    """The command ``name`` next to this interpreter (the tools venv), or the one on PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed; run the tests through scripts/test")
    return found


def uv() -> str:
    return tool("uv")


def run(
    project: Path, *command: str, env: dict[str, str] | None = None, timeout: float = 600
) -> str:
    """Run ``command`` in ``project``; fail the test with its output if it fails."""
    unwanted = ("VIRTUAL_ENV", "AMQP_URL", "AMQP_RESTART_COMMAND")
    environment = {k: v for k, v in os.environ.items() if k not in unwanted}
    environment.update(env or {})
    result = subprocess.run(
        command, cwd=project, env=environment, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` failed in {project.name} ({result.returncode}):\n"
            f"{result.stdout[-6000:]}\n{result.stderr[-6000:]}"
        )
    return result.stdout + result.stderr


@dataclass(frozen=True)
class Broker:
    """A RabbitMQ for the generated projects' tests, and how to restart it if we know how."""

    url: str
    restart_command: str

    def env(self) -> dict[str, str]:
        """The environment that points a generated project's tests at this broker."""
        env = {"AMQP_URL": self.url}
        if self.restart_command:
            env["AMQP_RESTART_COMMAND"] = self.restart_command
        return env


@pytest.fixture(scope="session")
def rabbitmq() -> Iterator[Broker]:
    """The RabbitMQ in AMQP_URL (restarted by AMQP_RESTART_COMMAND, if given), or a throwaway
    node for this session."""
    given = os.environ.get("AMQP_URL")
    if given:
        yield Broker(given, os.environ.get("AMQP_RESTART_COMMAND", ""))
        return
    try:
        node = ThrowawayRabbitMQ()
        node.start()
    except RabbitMQUnavailable as exc:
        pytest.exit(str(exc).splitlines()[0], returncode=1)
    try:
        yield Broker(node.url, node.restart_command)
    finally:
        node.stop()


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fully checked variants, rendered and installed with ``uv sync``."""
    projects = {}
    for name in FULLY_CHECKED:
        project = bake(tmp_path_factory.mktemp(name), **VARIANTS[name])
        run(project, uv(), "sync", "--quiet")
        projects[name] = project
    return projects
