"""Consuming the service queue: each delivery goes to the dispatcher, which settles it by the
rules in ``messaging.py``. A retry or a dead letter is a copy sent to that queue with
``AmqpPublisher.copy_to_queue``, then an ack, in that order: a crash between the two duplicates
the message, never loses it. Example use::

    settler = Settler(publisher, topology.names, settings.retry_delay)
    consumer = AmqpConsumer(dispatcher, settler)
    await consumer.start(queue)  # after each (re)connect, while the service consumes
    await consumer.stop(within=5.0)
"""

from __future__ import annotations

import asyncio
import logging

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue

from ..dispatch import Dispatcher
from ..messaging import Headers, PublishError
from .connection import AMQP_ERRORS
from .publishing import AmqpPublisher
from .topology import QueueNames

log = logging.getLogger(__name__)


class AmqpConsumer:
    """The service's one consumer of its queue."""

    def __init__(self, dispatcher: Dispatcher, settler: Settler) -> None:
        self._dispatcher = dispatcher
        self._settler = settler
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None

    @property
    def registered(self) -> bool:
        """Whether RabbitMQ has this consumer, as far as the service has been told."""
        return self._tag is not None

    async def start(self, queue: AbstractQueue) -> None:
        """Consume ``queue``, a fresh declaration on a channel opened for it."""
        self._queue = queue
        self._tag = await queue.consume(self._on_message)

    def forget(self) -> None:
        """The channel or the consumer is gone on the broker's side; nothing to cancel."""
        self._queue = self._tag = None

    async def stop(self, within: float) -> None:
        """Take no new deliveries; handlers in flight go on. Safe to call twice."""
        queue, tag = self._queue, self._tag
        self.forget()
        if queue is None or tag is None or queue.channel.is_closed:
            return
        try:
            async with asyncio.timeout(within):
                await queue.cancel(tag)
        except AMQP_ERRORS:  # TimeoutError is an OSError
            log.warning("could not cancel the consumer cleanly; closing the channel stops it")

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._dispatcher.handle(AmqpDelivery(message, self._settler))
        except AMQP_ERRORS as exc:
            # The channel went away before the message was settled: RabbitMQ redelivers it.
            log.warning(
                "could not settle a %s message (%s); it will be redelivered",
                message.routing_key,
                exc,
            )
        except Exception:
            # A fault of the runtime itself. Rejecting hands the message to the service
            # queue's dead-letter exchange: kept, not redelivered in a loop.
            log.exception("could not handle a %s message; dead-lettering it", message.routing_key)
            await _reject(message)


class Settler:
    """Retries and dead-letters a delivered message: a copy to that queue, then an ack."""

    def __init__(self, publisher: AmqpPublisher, names: QueueNames, retry_delay: float) -> None:
        self._publisher = publisher
        self._names = names
        self._retry_delay = retry_delay

    async def retry(self, message: AbstractIncomingMessage, headers: Headers) -> None:
        """Send ``message`` back to the service queue after the retry delay."""
        await self._move(message, self._names.retry, headers, self._retry_delay)

    async def dead_letter(self, message: AbstractIncomingMessage, headers: Headers) -> None:
        """Keep ``message`` in the dead-letter queue."""
        await self._move(message, self._names.dead_letter, headers)

    async def _move(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        headers: Headers,
        expiration: float | None = None,
    ) -> None:
        try:
            await self._publisher.copy_to_queue(message, queue, headers, expiration)
        except PublishError as exc:
            log.error("could not move a message to %s (%s); rejecting it instead", queue, exc)
            await _reject(message)
            return
        await message.ack()


class AmqpDelivery:
    """One message from RabbitMQ, and the ways to settle it."""

    def __init__(self, message: AbstractIncomingMessage, settler: Settler) -> None:
        self._message = message
        self._settler = settler
        self.routing_key = message.routing_key or ""
        self.body = message.body
        self.headers: Headers = dict(message.headers or {})
        self.message_id = message.message_id
        self.correlation_id = message.correlation_id
        self.redelivered = bool(message.redelivered)

    async def ack(self) -> None:
        await self._message.ack()

    async def retry(self, headers: Headers) -> None:
        await self._settler.retry(self._message, headers)

    async def dead_letter(self, headers: Headers) -> None:
        await self._settler.dead_letter(self._message, headers)


async def _reject(message: AbstractIncomingMessage) -> None:
    """Reject without requeueing, so the queue's dead-letter exchange keeps the message."""
    if message.processed:
        return
    try:
        await message.reject(requeue=False)
    except AMQP_ERRORS as exc:
        log.warning("could not reject a message (%s); it will be redelivered", exc)
