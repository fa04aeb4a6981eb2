"""The peer: FastStream's RabbitBroker consuming the same pre-filled queue at the same prefetch,
acking after its handler, with its per-message logging off (the service runs at WARNING too).

python reference_faststream.py AMQP_URL QUEUE COUNT PREFETCH  -> prints "seconds messages"
It times from the first message to the last, as the benchmark does for the service.
"""

import asyncio
import sys
import time
from typing import Any

from faststream import AckPolicy
from faststream.rabbit import Channel, RabbitBroker, RabbitQueue


async def main(url: str, queue_name: str, count: int, prefetch: int) -> None:
    broker = RabbitBroker(url, default_channel=Channel(prefetch_count=prefetch), logger=None)
    done = asyncio.Event()
    seen = 0
    first = 0.0

    # declare=False: the queue exists already, as it does for the other consumers.
    @broker.subscriber(RabbitQueue(queue_name, declare=False), ack_policy=AckPolicy.ACK)
    async def handle(body: dict[str, Any]) -> None:
        nonlocal seen, first
        if seen == 0:
            first = time.perf_counter()
        seen += 1
        if seen == count:
            done.set()

    async with broker:
        await broker.start()
        await done.wait()
    print(f"{time.perf_counter() - first:.6f} {seen}")


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
