"""An in-process broker for ``memory://``: the demo without RabbitMQ, and fast tests.

It keeps RabbitMQ's rules for this one service: routing by topic pattern, at most ``prefetch``
handlers at once, ack after the handler, retry after ``retry_delay``, a dead-letter list, and
redelivery of what was not acked. Nothing leaves the process and nothing survives a restart.
There is no consuming loop: a delivery starts when a message arrives or a handler slot frees.
Example use::

    broker = MemoryBroker(settings, dispatcher, events, metrics)
    await broker.connect()
    await broker.publish("measurement.recorded", event)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field, replace
from uuid import uuid4

from pydantic import BaseModel

from .broker import BrokerStatus
from .correlation import CORRELATION_ID
from .dispatch import ERROR, ERROR_TYPE, Dispatcher
from .messaging import EventHandlers, Headers, PublishError, UnroutableLog
from .metrics import Metrics
from .settings import RuntimeSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MemoryMessage:
    """A message as the in-process broker holds it."""

    routing_key: str
    body: bytes
    headers: Headers = field(default_factory=dict)
    message_id: str | None = None
    correlation_id: str | None = None

    def with_headers(self, headers: Headers) -> MemoryMessage:
        return replace(self, headers=dict(headers))


class MemoryBroker:
    """The ``Broker`` of ``memory://``; ``dead_letters`` holds what RabbitMQ's DLQ would."""

    def __init__(
        self,
        settings: RuntimeSettings,
        dispatcher: Dispatcher,
        handlers: EventHandlers,
        metrics: Metrics,
    ) -> None:
        self._dispatcher = dispatcher
        self._metrics = metrics
        self._handlers = handlers
        self._prefetch = settings.prefetch
        self._retry_delay = settings.retry_delay
        self._ready: deque[MemoryMessage] = deque()
        self._retries: set[asyncio.TimerHandle] = set()
        self._deliveries: set[asyncio.Task[None]] = set()
        self._consuming = False
        self._open = False
        self._unroutable = UnroutableLog()
        self.dead_letters: list[MemoryMessage] = []

    @property
    def queued(self) -> int:
        """Messages waiting in the service queue (not counting those in a handler)."""
        return len(self._ready)

    async def connect(self) -> None:
        log.warning(
            "using the in-process broker (memory://): events stay inside this process and are "
            "lost when it stops; set the AMQP URL to a RabbitMQ for anything else"
        )
        self._open = True

    async def publish(
        self,
        routing_key: str,
        event: BaseModel,
        *,
        headers: Headers | None = None,
        correlation_id: str | None = None,
    ) -> None:
        if not self._open:
            self._metrics.published(routing_key, "failed", 0.0)
            raise PublishError(f"cannot publish {routing_key}: the in-process broker is closed")
        message = MemoryMessage(
            routing_key,
            event.model_dump_json().encode(),
            dict(headers or {}),
            message_id=uuid4().hex,
            correlation_id=correlation_id or CORRELATION_ID.get(),
        )
        routed = self.enqueue(message)
        self._metrics.published(routing_key, "confirmed" if routed else "unroutable", 0.0)

    def enqueue(self, message: MemoryMessage) -> bool:
        """Route a raw message into the service queue, as the shared exchange would; return
        whether a binding took it."""
        if self._handlers.find(message.routing_key) is None:
            self._unroutable.report(message.routing_key)
            return False
        self._ready.append(message)
        self._deliver_ready()
        return True

    def retry_later(self, message: MemoryMessage) -> None:
        """Put ``message`` back in the service queue after the retry delay."""
        loop = asyncio.get_running_loop()

        def requeue() -> None:
            self._retries.discard(handle)
            self._ready.append(message)
            self._deliver_ready()

        handle = loop.call_later(self._retry_delay, requeue)
        self._retries.add(handle)

    async def start_consuming(self) -> None:
        self._consuming = True
        self._deliver_ready()

    async def stop_consuming(self) -> None:
        self._consuming = False

    async def close(self) -> None:
        await self.stop_consuming()
        for handle in self._retries:
            handle.cancel()
        self._retries.clear()
        self._open = False

    async def status(self) -> BrokerStatus:
        if not self._open:
            return BrokerStatus(False, False, "the in-process broker is closed")
        if not self._consuming:
            return BrokerStatus(True, False, "the service's consumer is not registered")
        return BrokerStatus(True, True, "in-process broker (memory://)")

    def _deliver_ready(self) -> None:
        while self._consuming and self._ready and len(self._deliveries) < self._prefetch:
            task = asyncio.create_task(self._deliver(self._ready.popleft()))
            self._deliveries.add(task)
            task.add_done_callback(self._delivered)

    def _delivered(self, task: asyncio.Task[None]) -> None:
        self._deliveries.discard(task)
        self._deliver_ready()

    async def _deliver(self, message: MemoryMessage) -> None:
        delivery = MemoryDelivery(self, message)
        try:
            await self._dispatcher.handle(delivery)
        except Exception as exc:
            # A fault of the runtime itself: keep the message, but never in a redelivery loop.
            log.exception("could not handle a %s message; dead-lettering it", message.routing_key)
            error = {ERROR_TYPE: type(exc).__name__, ERROR: str(exc)[:500]}
            await delivery.dead_letter({**message.headers, **error})
        finally:
            if not delivery.settled:
                # Like a closed channel in RabbitMQ: what was not acked is delivered again.
                self._ready.append(message)


class MemoryDelivery:
    """One message from the in-process broker, and the ways to settle it."""

    def __init__(self, broker: MemoryBroker, message: MemoryMessage) -> None:
        self._broker = broker
        self._message = message
        self.routing_key = message.routing_key
        self.body = message.body
        self.headers: Headers = message.headers
        self.message_id = message.message_id
        self.correlation_id = message.correlation_id
        # A retried copy is a new message, as with RabbitMQ; only a requeue would redeliver.
        self.redelivered = False
        self.settled = False

    async def ack(self) -> None:
        self.settled = True

    async def retry(self, headers: Headers) -> None:
        self._broker.retry_later(self._message.with_headers(headers))
        self.settled = True

    async def dead_letter(self, headers: Headers) -> None:
        self._broker.dead_letters.append(self._message.with_headers(headers))
        self.settled = True
