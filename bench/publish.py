"""Publish throughput: the service's publisher against raw aio-pika, persistent with confirms,
``CONCURRENCY`` publishes awaited together at a time. Both serialise the same event on each
publish, as a service must. A warm-up round of each, then ``ROUNDS`` rounds alternating which
goes first; the medians are printed. Run with the service's interpreter:

python publish.py AMQP_URL COUNT CONCURRENCY  -> prints "service_msg_s raw_msg_s"
"""

import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aio_pika
from measurement_service.app import create_app
from measurement_service.runtime.broker import BROKER, PUBLISHER
from measurement_service.service.models import MeasurementRecorded
from measurement_service.settings import Settings

ROUNDS = 6


async def timed(count: int, concurrency: int, publish: Callable[[], Awaitable[None]]) -> float:
    began = time.perf_counter()
    for start in range(0, count, concurrency):
        await asyncio.gather(*(publish() for _ in range(min(concurrency, count - start))))
    return count / (time.perf_counter() - began)


async def main(url: str, count: int, concurrency: int) -> None:
    name = f"bench-publish-{uuid.uuid4().hex[:6]}"
    settings = Settings(amqp_url=url, service_name=name, exchange=f"{name}.events")
    app = create_app(settings)
    broker = app[BROKER]
    await broker.connect()  # declares the exchange, and the queue bound to measurement.recorded
    now = datetime.now(UTC)
    event = MeasurementRecorded(id=uuid.uuid4(), sensor="s", value=1.0, recorded_at=now)
    routing_key = "measurement.recorded"  # routed to a queue, so RabbitMQ stores each message
    publisher = app[PUBLISHER]  # what service code publishes with: declared events only

    async def service_publish() -> None:
        await publisher.publish(routing_key, event)

    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(settings.exchange)

    async def raw_publish() -> None:
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, routing_key=routing_key, mandatory=True)

    rates: dict[str, list[float]] = {"service": [], "raw": []}
    sides = [("service", service_publish), ("raw", raw_publish)]
    for _, publish in sides:  # warm-up: the connections, the queue's first segment
        await timed(min(count, 1000), concurrency, publish)
    for round_ in range(ROUNDS):
        for side, publish in sides if round_ % 2 == 0 else sides[::-1]:
            rates[side].append(await timed(count, concurrency, publish))
    service_rate = statistics.median(rates["service"])
    raw_rate = statistics.median(rates["raw"])
    for queue in (name, f"{name}.retry", f"{name}.dead-letter"):
        await channel.queue_delete(queue, if_unused=False, if_empty=False)
    await channel.exchange_delete(settings.exchange)
    await connection.close()
    await broker.close()
    print(f"{service_rate:.1f} {raw_rate:.1f}")


asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
