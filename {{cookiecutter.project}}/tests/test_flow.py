"""The example flow end to end, through each broker: REST publishes, the listener consumes and
updates shared state, REST reads it, and the periodic task's summary shows through REST."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from uuid import uuid4

import aio_pika
import pytest
from aiohttp import web

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.amqp import AmqpBroker
from {{ cookiecutter.package }}.runtime.broker import BROKER
from {{ cookiecutter.package }}.service.models import MeasurementRecorded
from {{ cookiecutter.package }}.settings import Settings

from .conftest import AMQP_URL, Client, eventually, make_settings, readiness_is
from .proxy import Proxy


async def test_measurements_flow_through_the_broker_into_the_api(client: Client) -> None:
    ids = set()
    for value in (1.0, 2.0, 6.0):
        response = await client.post("/measurements", json={"sensor": "boiler", "value": value})
        assert response.status == 202
        ids.add((await response.json())["id"])
    assert len(ids) == 3

    async def all_three_counted() -> bool:
        response = await client.get("/sensors/boiler")
        return response.status == 200 and (await response.json())["count"] == 3

    await eventually(all_three_counted)
    stats = await (await client.get("/sensors/boiler")).json()
    assert stats == {
        "sensor": "boiler",
        "count": 3,
        "last": 6.0,
        "minimum": 1.0,
        "maximum": 6.0,
        "mean": 3.0,
    }


async def test_periodic_summary_is_visible_through_the_api(
    start: Callable[[web.Application], Awaitable[Client]], broker_url: str
) -> None:
    client = await start(create_app(make_settings(amqp_url=broker_url, summary_interval=0.1)))
    await client.post("/measurements", json={"sensor": "a", "value": 1})
    await client.post("/measurements", json={"sensor": "b", "value": 500})

    async def summarised() -> bool:
        response = await client.get("/summary")
        if response.status != 200:
            return False
        summary = await response.json()
        return (summary["sensors"], summary["measurements"], summary["alerts"]) == (2, 2, 1)

    await eventually(summarised)


@pytest.mark.rabbitmq
async def test_alerts_reach_other_services_over_rabbitmq(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    settings = make_settings(amqp_url=AMQP_URL, alert_threshold=100)
    client = await start(create_app(settings))
    # Another service: its own queue on the shared exchange, bound to the alerts.
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(settings.exchange)
        listener = await channel.declare_queue(exclusive=True)
        await listener.bind(exchange, "sensor.alert")
        await client.post("/measurements", json={"sensor": "boiler", "value": 150})
        message = None

        async def alert_arrived() -> bool:
            nonlocal message
            message = await listener.get(no_ack=True, fail=False)
            return message is not None

        await eventually(alert_arrived)
        assert message is not None
        assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert message.content_type == "application/json"
        alert = json.loads(message.body)
        assert (alert["sensor"], alert["value"], alert["threshold"]) == ("boiler", 150.0, 100.0)


async def test_ready_when_connected_and_consuming(client: Client) -> None:
    response = await client.get("/health/ready")
    assert response.status == 200
    report = await response.json()
    assert report["status"] == "ready"
    assert report["reasons"] == []
    assert report["broker"]["connected"]
    assert report["broker"]["consuming"]
    assert set(report["tasks"]) == {"publish_summary", "publish_alerts"}


async def test_unready_without_consumer_then_without_connection(
    client: Client, settings: Settings
) -> None:
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
    response = await client.post("/measurements", json={"sensor": "t1", "value": 1})
    assert response.status == 503


@pytest.mark.rabbitmq
async def test_unreachable_rabbitmq_stops_start_up_with_a_clear_error() -> None:
    from {{ cookiecutter.package }}.runtime.broker import StartupError

    settings = make_settings(amqp_url="amqp://guest:secret@127.0.0.1:1/", connect_timeout=1.0)
    app = create_app(settings)
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
    client = await start(create_app(settings))
    total = 3000
    # Another service fills the queue, straight to the broker rather than through the proxy.
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel(publisher_confirms=False)
        exchange = await channel.get_exchange(settings.exchange)
        for _ in range(total):
            event = MeasurementRecorded(
                id=uuid4(), sensor="s", value=1.0, recorded_at=datetime.now(UTC)
            )
            message = aio_pika.Message(event.model_dump_json().encode())
            await exchange.publish(message, "measurement.recorded")

    async def count() -> int:
        response = await client.get("/sensors/s")
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
    response = await client.post("/measurements", json={"sensor": "t1", "value": 1})
    assert response.status == 503
    assert loop.time() - began < 2.0

    proxy.restore()
    await eventually(readiness_is(client, 200), within=15)
    await eventually(all_counted, within=30)
    # r.msg, not getMessage(): an aio-pika record has an argument whose repr raises.
    redelivered = [r for r in caplog.records if "delivered again" in str(r.msg)]
    assert len(redelivered) <= 1  # at most what was in flight (prefetch 1) at the cut
    response = await client.post("/measurements", json={"sensor": "t1", "value": 2})
    assert response.status == 202


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
    client = await start(create_app(settings))
    proxy.freeze()  # the link goes quiet: no error, no close, nothing
    loop = asyncio.get_running_loop()
    began = loop.time()
    await eventually(readiness_is(client, 503), within=10)
    assert loop.time() - began < 5  # a few heartbeats, not the OS's TCP timeout
    proxy.restore()
    await eventually(readiness_is(client, 200), within=15)


@pytest.mark.rabbitmq
async def test_consuming_resumes_after_the_queue_is_deleted_on_the_server(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    settings = make_settings(amqp_url=AMQP_URL)
    client = await start(create_app(settings))
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        await channel.queue_delete(settings.service_name, if_unused=False, if_empty=False)

    # Events published while the queue is gone are unroutable (the log says so); what must
    # hold is that the service declares, binds and consumes its queue again on its own.
    async def consuming_again() -> bool:
        response = await client.post("/measurements", json={"sensor": "after", "value": 1})
        assert response.status == 202
        await asyncio.sleep(0.1)
        return (await client.get("/sensors/after")).status == 200

    await eventually(consuming_again, within=15)
    assert (await client.get("/health/ready")).status == 200


@pytest.mark.rabbitmq
async def test_watchdog_reopens_channels_that_recovery_left_closed(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    client = await start(create_app(make_settings(amqp_url=AMQP_URL, watchdog_interval=0.1)))
    broker = client.app[BROKER]
    assert isinstance(broker, AmqpBroker)
    # Closed from our side, aio-pika will not restore them: only the watchdog can.
    assert broker._publishing is not None
    assert broker._consuming is not None
    await broker._publishing.close()
    await broker._consuming.close()
    assert (await client.get("/health/ready")).status == 503
    await eventually(readiness_is(client, 200))
    response = await client.post("/measurements", json={"sensor": "w", "value": 1})
    assert response.status == 202

    async def consumed() -> bool:
        return (await client.get("/sensors/w")).status == 200

    await eventually(consumed)
