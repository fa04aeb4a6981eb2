"""The example flow end to end, through each broker: REST publishes, the listener consumes and
updates shared state, REST reads it, and the periodic task's summary shows through REST."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import aio_pika
import pytest
from aiohttp import web
from pydantic import BaseModel

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.broker import BROKER, PUBLISHER
from {{ cookiecutter.package }}.runtime.messaging import PublishError

from ..conftest import AMQP_URL, Client, eventually, make_settings, readiness_is


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


async def test_alerts_survive_failed_publishes_and_readiness_recovers(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    """The example's publish_alerts fails on a broker blip, is restarted, and recovers."""
    settings = make_settings(
        alert_threshold=100, task_unhealthy_after=0.3, task_recovered_after=0.1
    )
    app = create_app(settings)
    broker = app[BROKER]
    alerts: list[BaseModel] = []
    failures = 3

    class Blinking:
        """The broker, but the first alerts it is given are not confirmed."""

        async def publish(self, routing_key: str, event: BaseModel, **_: object) -> None:
            nonlocal failures
            if routing_key == "sensor.alert":
                if failures:
                    failures -= 1
                    raise PublishError("RabbitMQ did not confirm within 0.1s")
                alerts.append(event)
            await broker.publish(routing_key, event)

    app[PUBLISHER] = Blinking()
    client = await start(app)
    await client.post("/measurements", json={"sensor": "boiler", "value": 150})

    async def alert_sent() -> bool:
        return len(alerts) == 1

    await eventually(alert_sent)
    await eventually(readiness_is(client, 200))
    for _ in range(10):  # ready, and still ready well past task_unhealthy_after
        assert (await client.get("/health/ready")).status == 200
        await asyncio.sleep(0.1)
    report = (await (await client.get("/health/ready")).json())["tasks"]["publish_alerts"]
    assert report["restarts"] == 3
    assert report["failing_since"] is None
