"""Fixtures: settings shrunk for tests, and the app started against each broker.

Tests that take ``broker_url`` run twice: on ``memory://`` and on the RabbitMQ in ``AMQP_URL``.
Without ``AMQP_URL`` the RabbitMQ half is skipped and says so; CI always sets it.

``client`` and ``memory_client`` run the service as ``create_app`` builds it, for the tests in
``tests/service/``. The runtime's tests use ``sample_client`` and ``sample_memory_client``,
which run the runtime with ``tests/sample.py`` instead of ``service/``.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NamedTuple

import aio_pika
import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from yarl import URL

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.amqp import AmqpBroker
from {{ cookiecutter.package }}.runtime.broker import BROKER
from {{ cookiecutter.package }}.runtime.memory import MemoryBroker, MemoryMessage
from {{ cookiecutter.package }}.settings import SETTINGS, Settings

from .proxy import Proxy
from .sample import sample_app

AMQP_URL = os.environ.get("AMQP_URL", "")

BROKERS = [
    pytest.param("memory://", id="memory"),
    pytest.param(
        AMQP_URL,
        id="rabbitmq",
        marks=[
            pytest.mark.rabbitmq,
            pytest.mark.skipif(not AMQP_URL, reason="set AMQP_URL to a RabbitMQ to run this"),
        ],
    ),
]

ClientFactory = Callable[[web.Application], Awaitable[TestClient[web.Request, web.Application]]]
Client = TestClient[web.Request, web.Application]


def make_settings(**overrides: Any) -> Settings:
    """Settings for one test: names of its own on the broker, and every wait made short."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    values: dict[str, Any] = {
        "service_name": name,
        "exchange": f"{name}.events",
        "amqp_url": SecretStr("memory://"),
        "retry_delay": 0.05,
        "publish_timeout": 2.0,
        "connect_timeout": 5.0,
        "reconnect_interval": 0.2,
        "shutdown_timeout": 2.0,
        "task_backoff_max": 0.05,
        "task_unhealthy_after": 0.2,
        "task_recovered_after": 0.1,
    }
    values.update(overrides)
    if isinstance(values["amqp_url"], str):
        values["amqp_url"] = SecretStr(values["amqp_url"])
    return Settings(**values)


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def start(
    aiohttp_client: ClientFactory,
) -> AsyncIterator[Callable[[web.Application], Awaitable[Client]]]:
    """Start an app (its cleanup contexts connect to the broker); stop it and delete its queues
    after the test."""
    started: list[Client] = []

    async def run(app: web.Application) -> Client:
        client = await aiohttp_client(app)
        started.append(client)
        return client

    yield run
    for client in started:
        await client.close()  # first, or the service would declare again what is deleted
        broker = client.app.get(BROKER)
        if isinstance(broker, AmqpBroker):
            await delete_topology(broker)


async def delete_topology(broker: AmqpBroker) -> None:
    names = broker.topology.names
    # AMQP_URL rather than the app's URL, which may lead through a proxy a test has closed.
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        for queue in (names.service, names.retry, names.dead_letter):
            await channel.queue_delete(queue, if_unused=False, if_empty=False)
        await channel.exchange_delete(broker.topology.exchange, if_unused=False)


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Wait until ``check`` holds; fail the test if it does not ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"{check.__name__} did not hold within {within}s")
        await asyncio.sleep(0.02)


async def queued(queue: str) -> int:
    """Messages ready in ``queue`` on the RabbitMQ in AMQP_URL."""
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        return declared.declaration_result.message_count or 0


def readiness_is(client: Client, status: int) -> Callable[[], Awaitable[bool]]:
    """A check for ``eventually``: ``GET /health/ready`` answers ``status``."""

    async def check() -> bool:
        return (await client.get("/health/ready")).status == status

    check.__name__ = f"readiness_is_{status}"
    return check


async def wait_ready(
    base_url: str, process: asyncio.subprocess.Process, log: list[str] | None = None
) -> None:
    """Wait until a service process is ready; fail at once, with its log, if it exits."""
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            if process.returncode is not None:
                pytest.fail("the service exited at start:\n" + "\n".join(log or []))
            try:
                async with session.get(f"{base_url}/health/ready") as response:
                    return response.status == 200
            except aiohttp.ClientConnectionError:
                return False

        await eventually(ready, within=20)


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    """A TCP proxy in front of the RabbitMQ in AMQP_URL; ``proxy.url(AMQP_URL)`` leads through."""
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    real = URL(AMQP_URL)
    proxy = Proxy(real.host or "127.0.0.1", real.port or 5672)
    await proxy.start()
    yield proxy
    await proxy.close()


class Letter(NamedTuple):
    """A dead-lettered message."""

    headers: dict[str, Any]
    body: bytes
    correlation_id: str | None


class RawBroker:
    """What a test needs beyond the service: raw publishes and a look at the dead letters."""

    def __init__(self, app: web.Application) -> None:
        self.broker = app[BROKER]
        self.settings = app[SETTINGS]

    async def publish(
        self, routing_key: str, *bodies: bytes, headers: dict[str, Any] | None = None
    ) -> None:
        """Send bytes as another service would, with no validation on the way."""
        if isinstance(self.broker, MemoryBroker):
            for body in bodies:
                self.broker.enqueue(MemoryMessage(routing_key, body, dict(headers or {})))
            return
        settings = self.settings
        async with await aio_pika.connect(settings.amqp_url.get_secret_value()) as connection:
            channel = await connection.channel()
            exchange = await channel.get_exchange(settings.exchange)
            for body in bodies:
                message = aio_pika.Message(body, headers=headers)
                await exchange.publish(message, routing_key=routing_key)

    async def dead_letters(self) -> list[Letter]:
        """Every message in the dead-letter queue (taking them out)."""
        if isinstance(self.broker, MemoryBroker):
            letters = [
                Letter(dict(m.headers), m.body, m.correlation_id) for m in self.broker.dead_letters
            ]
            self.broker.dead_letters.clear()
            return letters
        assert isinstance(self.broker, AmqpBroker)
        found: list[Letter] = []
        async with await aio_pika.connect(AMQP_URL) as connection:
            channel = await connection.channel()
            queue = await channel.get_queue(self.broker.topology.names.dead_letter)
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                found.append(Letter(dict(message.headers), message.body, message.correlation_id))
        return found


@pytest.fixture
def settings(broker_url: str) -> Settings:
    return make_settings(amqp_url=broker_url)


@pytest.fixture
async def client(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> Client:
    """The service, started against each broker."""
    return await start(create_app(settings))


@pytest.fixture
async def memory_client(start: Callable[[web.Application], Awaitable[Client]]) -> Client:
    """The service on the in-process broker, for tests that are about HTTP alone."""
    return await start(create_app(make_settings()))


@pytest.fixture
async def sample_client(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> Client:
    """The runtime with the sample service of ``tests/sample.py``, against each broker."""
    return await start(sample_app(settings))


@pytest.fixture
async def sample_memory_client(start: Callable[[web.Application], Awaitable[Client]]) -> Client:
    """The runtime with the sample service, on the in-process broker."""
    return await start(sample_app(make_settings()))
