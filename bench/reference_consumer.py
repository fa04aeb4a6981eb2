"""The consume reference: raw aio-pika decoding JSON and acking, at a given prefetch.

python reference_consumer.py AMQP_URL QUEUE COUNT PREFETCH  -> prints "seconds messages"
It times from the first message to the last, as the benchmark does for the service.
"""

import asyncio
import json
import sys
import time

import aio_pika


async def main(url: str, queue_name: str, count: int, prefetch: int) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=prefetch)
    queue = await channel.declare_queue(queue_name, passive=True)
    done = asyncio.Event()
    seen = 0
    first = 0.0

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        nonlocal seen, first
        json.loads(message.body)
        await message.ack()
        if seen == 0:
            first = time.perf_counter()
        seen += 1
        if seen == count:
            done.set()

    await queue.consume(on_message)
    await done.wait()
    print(f"{time.perf_counter() - first:.6f} {seen}")
    await connection.close()


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
