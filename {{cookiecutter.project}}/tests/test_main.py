"""The service as a real process: start, serve, and stop on SIGTERM with exit status 0."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from importlib.util import find_spec

import aiohttp
import pytest

from {{ cookiecutter.package }}.settings import ENV_PREFIX

from .conftest import wait_ready


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def run_service(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "{{ cookiecutter.package }}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


# Not "event_loop": older pytest-asyncio has a fixture of that name.
@pytest.mark.parametrize("loop_kind", ["auto", "asyncio"])
async def test_sigterm_stops_the_service_gracefully_with_status_0(loop_kind: str) -> None:
    port = free_port()
    process = await run_service(
        "--amqp-url", "memory://", "--http-host", "127.0.0.1", "--http-port", str(port),
        "--event-loop", loop_kind,
    )  # fmt: skip
    await wait_ready(f"http://127.0.0.1:{port}", process)
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}/openapi.json") as response,
    ):
        assert response.status == 200
        assert (await response.json())["paths"]  # the service's own routes, served
    process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    log = stderr.decode()
    assert process.returncode == 0, log
    kind = "uvloop" if loop_kind == "auto" and find_spec("uvloop") else "asyncio"
    assert f"on the {kind} event loop" in log
    assert "shutting down" in log
    assert "stopped" in log
    assert "Traceback" not in log


async def test_invalid_setting_exits_2_naming_the_variable() -> None:
    process = await run_service("--http-port", "99999")
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    assert process.returncode == 2
    assert f"{ENV_PREFIX}HTTP_PORT (--http-port)" in stderr.decode()


@pytest.mark.rabbitmq
@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("amqp://guest:guest@127.0.0.1:1/", "RabbitMQ at amqp://guest:***@127.0.0.1:1/"),
        (
            "amqp://guest:guest@127.0.0.1:1,127.0.0.1:2/",
            "RabbitMQ at any of 2 nodes (amqp://guest:***@127.0.0.1:1/, "
            "amqp://guest:***@127.0.0.1:2/)",
        ),
    ],
    ids=["one node", "every node of a cluster"],
)
async def test_unreachable_rabbitmq_exits_1_saying_what_to_do(url: str, named: str) -> None:
    process = await run_service(
        "--amqp-url", url, "--connect-timeout", "1", "--http-port", str(free_port())
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
    log = stderr.decode()
    assert process.returncode == 1, log
    assert f"{named} could not be reached within 1s" in log
    assert f"{ENV_PREFIX}AMQP_URL" in log
    assert "Traceback" not in log
