"""What the benchmark does to RabbitMQ directly: fill, measure, declare, delete and reroute
queues, and the measurement events it fills them with. Used by ``bench.py``::

    asyncio.run(fill_queue(url, "events", "measurement.recorded", measurement_bodies(1000)))
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from uuid import uuid4


async def fill_queue(url: str, exchange: str, routing_key: str, bodies: list[bytes]) -> None:
    import aio_pika

    # Confirmed, and all in flight at once: closing an aio-pika connection drops what it has not
    # written yet, so unconfirmed publishes could leave the queue short.
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange) if exchange else channel.default_exchange
        for at in range(0, len(bodies), 10_000):  # a deep backlog in slices: bounded memory
            await asyncio.gather(
                *(
                    target.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=routing_key,
                    )
                    for body in bodies[at : at + 10_000]
                )
            )


async def queue_length(url: str, name: str) -> int:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


# What the other designs and the peer need beside the service (not in its dependencies).


def measurement_bodies(count: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        json.dumps(
            {"id": str(uuid4()), "sensor": "consume", "value": 1.0, "recorded_at": now}
        ).encode()
        for _ in range(count)
    ]


# aiohttp.web, not just aiohttp: the package alone is its client; a REST service needs the server.


async def reroute(url: str, away_from: str, to: str) -> None:
    """Bind queue ``to`` to measurement.recorded on the events exchange and unbind
    ``away_from``; the sink queue is made on the way there and deleted on the way back."""
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange("events")
        if to == "bench-post-sink":
            await channel.declare_queue(to, durable=True, arguments={"x-queue-type": "quorum"})
        target = await channel.get_queue(to)
        await target.bind(exchange, "measurement.recorded")
        source = await channel.get_queue(away_from)
        await source.unbind(exchange, "measurement.recorded")
        if away_from == "bench-post-sink":
            await channel.queue_delete(away_from)


async def purge(url: str, name: str) -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await (await channel.get_queue(name)).purge()


async def delete_queue(url: str, name: str) -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def declare_queue(url: str, name: str, kind: str = "quorum") -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": kind})


async def delete_service(url: str, name: str, exchange: str) -> None:
    """The queues and exchange of a service that ran under ``name`` for one measurement."""
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        for queue in (name, f"{name}.retry", f"{name}.dead-letter"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)
