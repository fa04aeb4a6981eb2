"""The broker link under faults, through each broker or on RabbitMQ alone: readiness, a
connection cut mid-stream, a silent link, what RabbitMQ closes or deletes, a crash of the
connection keeper, and how soon the service is back after a long outage."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from uuid import uuid4

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue
from aiohttp import web

from {{ cookiecutter.package }}.runtime.amqp import AmqpBroker
from {{ cookiecutter.package }}.runtime.amqp.topology import Topology
from {{ cookiecutter.package }}.runtime.broker import BROKER
from {{ cookiecutter.package }}.settings import Settings

from .conftest import AMQP_URL, Client, eventually, make_settings, readiness_is
from .proxy import Proxy
from .sample import Reading, sample_app
from .test_metrics import scrape, value


@pytest.fixture
async def on_rabbitmq(
    start: Callable[[web.Application], Awaitable[Client]],
) -> tuple[Client, Settings]:
    """The sample service on the RabbitMQ in AMQP_URL, for what only a real broker does."""
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    settings = make_settings(amqp_url=AMQP_URL)
    return await start(sample_app(settings)), settings


async def delete_queue(name: str) -> None:
    """Delete a queue on the server, as an operator might."""
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        await channel.queue_delete(name, if_unused=False, if_empty=False)


def published_and_consumed(client: Client, key: str) -> Callable[[], Awaitable[bool]]:
    """A check for ``eventually``: a reading posted now is accepted, then consumed."""

    async def check() -> bool:
        response = await client.post("/test/readings", json={"key": key, "value": 1})
        assert response.status == 202
        await asyncio.sleep(0.1)
        return (await client.get(f"/test/readings/{key}")).status == 200

    check.__name__ = f"{key}_published_and_consumed"
    return check


async def test_ready_when_connected_and_consuming(sample_client: Client) -> None:
    client = sample_client
    response = await client.get("/health/ready")
    assert response.status == 200
    report = await response.json()
    assert report["status"] == "ready"
    assert report["reasons"] == []
    assert report["broker"]["connected"]
    assert report["broker"]["consuming"]
    assert report["tasks"] == {}


async def test_unready_without_consumer_then_without_connection(sample_client: Client) -> None:
    client = sample_client
    broker = client.app[BROKER]
    await broker.stop_consuming()
    response = await client.get("/health/ready")
    assert response.status == 503
    assert "consumer is not registered" in (await response.json())["reasons"][0]

    await broker.close()
    response = await client.get("/health/ready")
    assert response.status == 503
    report = await response.json()
    assert report["status"] == "unready"
    assert report["broker"]["connected"] is False
    # A publish with no broker fails at once with 503 rather than hanging or claiming success.
    response = await client.post("/test/readings", json={"key": "t1", "value": 1})
    assert response.status == 503


@pytest.mark.rabbitmq
async def test_unreachable_rabbitmq_stops_start_up_with_a_clear_error() -> None:
    from {{ cookiecutter.package }}.runtime.broker import StartupError

    settings = make_settings(amqp_url="amqp://guest:secret@127.0.0.1:1/", connect_timeout=1.0)
    app = sample_app(settings)
    broker = app[BROKER]
    assert isinstance(broker, AmqpBroker)
    with pytest.raises(StartupError) as caught:
        await broker.connect()
    message = str(caught.value)
    assert "127.0.0.1:1" in message
    assert "AMQP_URL" in message
    assert "secret" not in message


@pytest.mark.rabbitmq
async def test_connection_cut_mid_stream_loses_nothing_and_readiness_follows(
    start: Callable[[web.Application], Awaitable[Client]],
    proxy: Proxy,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(
        amqp_url=proxy.url(AMQP_URL),
        prefetch=1,  # slow enough that the cut comes mid-stream
        reconnect_interval=0.2,
        reconnect_max=1.0,
        publish_timeout=0.5,
    )
    client = await start(sample_app(settings))
    total = 3000
    # Another service fills the queue, straight to the broker rather than through the proxy,
    # with confirms: closing the connection would drop what aio-pika has not written yet.
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(settings.exchange)

        def reading() -> aio_pika.Message:
            event = Reading(id=uuid4(), key="s", value=1.0)
            return aio_pika.Message(event.model_dump_json().encode())

        await asyncio.gather(*(exchange.publish(reading(), "test.reading") for _ in range(total)))

    async def count() -> int:
        response = await client.get("/test/readings/s")
        return int((await response.json())["count"]) if response.status == 200 else 0

    async def under_way() -> bool:
        return await count() >= 200

    async def all_counted() -> bool:
        return await count() == total  # the handler counts each id once

    await eventually(under_way)
    await proxy.cut()
    assert await count() < total  # the cut came mid-stream
    await eventually(readiness_is(client, 503))
    report = await (await client.get("/health/ready")).json()
    assert report["broker"]["connected"] is False
    # While the link is down a publish fails within the bound instead of hanging.
    loop = asyncio.get_running_loop()
    began = loop.time()
    response = await client.post("/test/readings", json={"key": "t1", "value": 1})
    assert response.status == 503
    assert loop.time() - began < 2.0

    await proxy.restore()
    await eventually(readiness_is(client, 200), within=15)
    await eventually(all_counted, within=30)
    # r.msg, not getMessage(): an aio-pika record has an argument whose repr raises.
    redelivered = [r for r in caplog.records if "delivered again" in str(r.msg)]
    assert len(redelivered) <= 1  # at most what was in flight (prefetch 1) at the cut
    response = await client.post("/test/readings", json={"key": "t1", "value": 2})
    assert response.status == 202
    samples = await scrape(client)
    assert value(samples, "broker_reconnects_total") == 1
    assert value(samples, "broker_connected") == 1


@pytest.mark.rabbitmq
async def test_heartbeats_notice_a_silently_dead_link(
    start: Callable[[web.Application], Awaitable[Client]], proxy: Proxy
) -> None:
    settings = make_settings(
        amqp_url=proxy.url(AMQP_URL),
        heartbeat=1,
        connect_timeout=1.0,
        reconnect_interval=0.2,
        reconnect_max=1.0,
    )
    client = await start(sample_app(settings))
    proxy.freeze()  # the link goes quiet: no error, no close, nothing
    loop = asyncio.get_running_loop()
    began = loop.time()
    await eventually(readiness_is(client, 503), within=10)
    assert loop.time() - began < 5  # a few heartbeats, not the OS's TCP timeout
    await proxy.restore()
    await eventually(readiness_is(client, 200), within=15)


@pytest.mark.rabbitmq
async def test_consuming_resumes_after_the_queue_is_deleted_on_the_server(
    on_rabbitmq: tuple[Client, Settings],
) -> None:
    client, settings = on_rabbitmq
    await delete_queue(settings.service_name)
    # Events published while the queue is gone are unroutable (the log says so); what must
    # hold is that the service declares, binds and consumes its queue again on its own.
    await eventually(published_and_consumed(client, "after"), within=15)
    assert (await client.get("/health/ready")).status == 200


@pytest.mark.rabbitmq
async def test_a_channel_rabbitmq_closes_is_reopened_and_its_exchange_declared_again(
    on_rabbitmq: tuple[Client, Settings],
) -> None:
    client, settings = on_rabbitmq
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        await channel.exchange_delete(settings.exchange, if_unused=False)
    # A publish to the deleted exchange makes RabbitMQ close the publishing channel (404).
    response = await client.post("/test/readings", json={"key": "x", "value": 1})
    assert response.status == 503
    await eventually(readiness_is(client, 200))
    # The exchange went with its bindings: both must be back for the event to arrive.
    await eventually(published_and_consumed(client, "again"), within=10)


@pytest.mark.rabbitmq
async def test_the_connection_keeper_is_restarted_after_a_crash_of_its_own(
    on_rabbitmq: tuple[Client, Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, settings = on_rabbitmq
    declare = Topology.declare_queues
    crashes: list[str] = []

    async def crash_once(self: Topology, channel: AbstractChannel) -> AbstractQueue:
        if not crashes:
            crashes.append("crashed")
            raise RuntimeError("a bug in the repair path")
        return await declare(self, channel)

    monkeypatch.setattr(Topology, "declare_queues", crash_once)
    await delete_queue(settings.service_name)
    await eventually(readiness_is(client, 503))
    await eventually(readiness_is(client, 200), within=10)  # restarted after a 1 s pause
    assert crashes == ["crashed"]
    ours = [r for r in caplog.records if r.name.startswith("{{ cookiecutter.package }}")]
    [crash] = [r for r in ours if "keeper crashed" in r.getMessage()]
    assert crash.levelno == logging.ERROR
    assert crash.exc_info is not None
    assert "a bug in the repair path" in str(crash.exc_info[1])
    await eventually(published_and_consumed(client, "after"))


@pytest.mark.rabbitmq
async def test_readiness_returns_within_3s_of_rabbitmq_accepting_again_after_a_long_outage(
    start: Callable[[web.Application], Awaitable[Client]], proxy: Proxy
) -> None:
    # The default backoff: pauses of 50-100 % of 1, 2, 4, 8, 16 ... 30 s. Attempt 4 comes after
    # 7.5 s at the earliest, and the pause after it is 8 s at least; RabbitMQ is back right after
    # such an attempt, so only the probe can make the service notice within 3 s.
    settings = make_settings(
        amqp_url=proxy.url(AMQP_URL), reconnect_interval=1.0, reconnect_max=30.0
    )
    client = await start(sample_app(settings))
    await proxy.cut()
    await eventually(readiness_is(client, 503))
    await asyncio.sleep(8)
    seen = await attempts(client)

    async def an_attempt_just_failed() -> bool:
        return await attempts(client) > seen

    await eventually(an_attempt_just_failed, within=20)
    loop = asyncio.get_running_loop()
    await proxy.restore()
    accepting = loop.time()
    await eventually(readiness_is(client, 200), within=20)
    lag = loop.time() - accepting
    assert lag < 3.0, f"ready {lag:.1f}s after RabbitMQ accepted connections again"


async def attempts(client: Client) -> int:
    """Reconnection attempts so far, as readiness reports them during an outage."""
    reason = (await (await client.get("/health/ready")).json())["reasons"][0]
    found = re.search(r"\((\d+) attempt", reason)
    assert found is not None, reason
    return int(found.group(1))
