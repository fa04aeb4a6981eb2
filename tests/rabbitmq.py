"""Throwaway RabbitMQ for the template's tests and benchmark: the generated project's own helper
(``{{cookiecutter.project}}/tests/rabbitmq.py``, which has no Jinja in it), plus installing
Debian's ``rabbitmq-server`` with apt when it is missing and we run as root. A generated project
never installs anything; the template's test command may. Example use::

    with ThrowawayRabbitMQ() as rabbit:
        run_tests(amqp_url=rabbit.url)
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

GENERATED_HELPER = (
    Path(__file__).resolve().parent.parent / "{{cookiecutter.project}}" / "tests" / "rabbitmq.py"
)
HOW_TO_PROVIDE = (
    "no RabbitMQ: set AMQP_URL to one (amqp://guest:guest@host:5672/), install Debian's "
    "rabbitmq-server, or run `docker run -d -p 5672:5672 rabbitmq:3`"
)


def _load_generated_helper() -> ModuleType:
    spec = importlib.util.spec_from_file_location("generated_rabbitmq", GENERATED_HELPER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


_generated = _load_generated_helper()
Node = _generated.Node
ThrowawayCluster = _generated.ThrowawayCluster
RabbitMQUnavailable = _generated.RabbitMQStartError
amqp_answers = _generated.amqp_answers
free_port = _generated.free_port
find_tool = _generated.find_tool


def ensure_installed() -> str:
    """The path of ``rabbitmq-server``, installing Debian's package if root may do so."""
    server = find_tool("rabbitmq-server")
    if server:
        return str(server)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RabbitMQUnavailable(HOW_TO_PROVIDE)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "rabbitmq-server"],
    ):
        if subprocess.run(command, env=env, capture_output=True, check=False).returncode:
            raise RabbitMQUnavailable(f"`{' '.join(command)}` failed; " + HOW_TO_PROVIDE)
    server = find_tool("rabbitmq-server")
    if not server:
        raise RabbitMQUnavailable("rabbitmq-server is still missing after apt-get install")
    return str(server)


class ThrowawayRabbitMQ(_generated.ThrowawayRabbitMQ):
    """One node, as the generated helper starts it, once Debian's package is installed."""

    def start(self) -> None:
        ensure_installed()
        super().start()
