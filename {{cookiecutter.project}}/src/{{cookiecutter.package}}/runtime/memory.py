"""An in-process broker for ``memory://``: the demo without RabbitMQ, and fast tests.

It keeps RabbitMQ's rules for this one service: routing by topic pattern, at most ``prefetch``
handlers at once, ack after the handler, retry after ``retry_delay``, a dead-letter list, and
redelivery of what was not acked. Nothing leaves the process and nothing survives a restart.
Example use::

    broker = MemoryBroker(settings, dispatcher, events)
    await broker.connect()
    await broker.publish("measurement.recorded", event)
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from typing import Any
from uuid import uuid4

from pydantic import BaseModel

from ..settings import Settings
from .broker import BrokerStatus
from .messaging import (
    Dispatcher,
    EventHandlers,
    Headers,
    PublishError,
    UnroutableLog,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryMessage:
    """A message as the in-process broker holds it."""

    routing_key: str
    body: bytes
    headers: Headers = field(default_factory=dict)
    message_id: str = field(default_factory=lambda: uuid4().hex)
    redelivered: bool = False


class MemoryBroker:
    """The ``Broker`` of ``memory://``; ``dead_letters`` holds what RabbitMQ's DLQ would."""

    def __init__(self, settings: Settings, dispatcher: Dispatcher, handlers: EventHandlers) -> None:
        self._dispatcher = dispatcher
        self._handlers = handlers
        self._prefetch = settings.prefetch
        self._retry_delay = settings.retry_delay
        self._queue: asyncio.Queue[MemoryMessage] = asyncio.Queue()
        self._retries: set[asyncio.TimerHandle] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._pump: asyncio.Task[None] | None = None
        self._open = False
        self._unroutable = UnroutableLog()
        self.dead_letters: list[MemoryMessage] = []

    @property
    def queued(self) -> int:
        """Messages waiting in the service queue (not counting those in a handler)."""
        return self._queue.qsize()

    async def connect(self) -> None:
        log.warning(
            "using the in-process broker (memory://): events stay inside this process and are "
            "lost when it stops; set the AMQP URL to a RabbitMQ for anything else"
        )
        self._open = True

    async def publish(self, routing_key: str, event: BaseModel) -> None:
        if not self._open:
            raise PublishError(f"cannot publish {routing_key}: the in-process broker is closed")
        self.enqueue(MemoryMessage(routing_key, event.model_dump_json().encode()))

    def enqueue(self, message: MemoryMessage) -> None:
        """Route a raw message into the service queue, as the shared exchange would."""
        if self._handlers.find(message.routing_key) is not None:
            self._queue.put_nowait(message)
        else:
            self._unroutable.report(message.routing_key)

    async def start_consuming(self) -> None:
        if self._pump is None:
            self._pump = asyncio.create_task(self._consume(), name="memory-broker-consumer")

    async def stop_consuming(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            await asyncio.gather(self._pump, return_exceptions=True)
            self._pump = None

    async def close(self) -> None:
        await self.stop_consuming()
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        self._open = False

    async def status(self) -> BrokerStatus:
        if not self._open:
            return BrokerStatus(False, False, "the in-process broker is closed")
        if self._pump is None:
            return BrokerStatus(True, False, "the service's consumer is not registered")
        return BrokerStatus(True, True, "in-process broker (memory://)")

    async def _consume(self) -> None:
        slots = asyncio.Semaphore(self._prefetch)
        while True:
            await slots.acquire()
            try:
                message = await self._queue.get()
            except asyncio.CancelledError:
                slots.release()
                raise
            task = asyncio.create_task(self._deliver(message, slots))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, message: MemoryMessage, slots: asyncio.Semaphore) -> None:
        delivery = _MemoryDelivery(self, message)
        try:
            await self._dispatcher.handle(delivery)
        finally:
            slots.release()
            if not delivery.settled:
                # Like a closed channel in RabbitMQ: what was not acked is delivered again.
                self._queue.put_nowait(replace(message, redelivered=True))

    def _retry_later(self, message: MemoryMessage) -> None:
        loop = asyncio.get_running_loop()

        def requeue() -> None:
            self._retries.discard(handle)
            self._queue.put_nowait(message)

        handle = loop.call_later(self._retry_delay, requeue)
        self._retries.add(handle)


class _MemoryDelivery:
    def __init__(self, broker: MemoryBroker, message: MemoryMessage) -> None:
        self._broker = broker
        self._message = message
        self.routing_key = message.routing_key
        self.body = message.body
        self.headers: Headers = message.headers
        self.settled = False

    async def ack(self) -> None:
        self.settled = True

    async def retry(self, headers: Headers) -> None:
        self._broker._retry_later(_copy(self._message, headers))
        self.settled = True

    async def dead_letter(self, headers: Headers) -> None:
        self._broker.dead_letters.append(_copy(self._message, headers))
        self.settled = True


def _copy(message: MemoryMessage, headers: Headers) -> MemoryMessage:
    fields: dict[str, Any] = {"headers": dict(headers), "redelivered": False}
    return replace(message, **fields)
