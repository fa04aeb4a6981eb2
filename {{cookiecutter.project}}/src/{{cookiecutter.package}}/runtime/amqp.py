"""RabbitMQ through aio-pika: the topology, the publisher and the consumer of the service.

Topology, declared at start-up and again after every reconnect:

- the topic exchange ``settings.exchange``, shared by the services that talk to each other;
- the service queue ``<service_name>``, durable (quorum by default), bound once per handler
  pattern; messages RabbitMQ itself rejects go to the dead-letter queue;
- ``<service_name>.retry``: failed messages wait there ``retry_delay`` seconds (a per-message
  TTL), then RabbitMQ moves them back to the service queue alone, not to every subscriber;
- ``<service_name>.dead-letter``: messages no retry can fix, with headers that say why.

Publishing uses its own channel with publisher confirms, so a slow consumer never holds up a
publish and no publish is reported sent before RabbitMQ has it. Example use::

    broker = AmqpBroker(settings, dispatcher, events)
    await broker.connect()
    await broker.publish("measurement.recorded", event)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime
from typing import Any, cast
from uuid import uuid4

import aio_pika
import aiormq
from aio_pika import RobustConnection
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from pydantic import BaseModel
from yarl import URL

from ..settings import ENV_PREFIX, Settings
from .broker import BrokerStatus, StartupError
from .messaging import Dispatcher, EventHandlers, Headers, PublishError, UnroutableLog

log = logging.getLogger(__name__)

# What aio-pika and aiormq raise when the connection or a channel is gone or going.
CHANNEL_ERRORS: tuple[type[Exception], ...] = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    aio_pika.exceptions.AMQPException,
    ConnectionError,
    OSError,
)


class BackoffConnection(RobustConnection):
    """aio-pika's robust connection, reconnecting with exponential backoff and jitter.

    aio-pika sleeps ``reconnect_interval`` between attempts and reads it each time; here it is
    a random 0.5 to 1.0 of how long the link has been down, kept between the base interval and
    ``reconnect_max``. Each wait is so about as long as all before it: the pause roughly doubles
    per attempt, and replicas that lost the broker together do not return in step.
    """

    reconnect_max: float = 30.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._base_interval = 1.0
        self._down_since: float | None = None
        super().__init__(*args, **kwargs)

    @property
    def reconnect_interval(self) -> float:
        down_for = 0.0
        if self._down_since is not None:
            down_for = asyncio.get_running_loop().time() - self._down_since
        bounded = min(max(self._base_interval, down_for), self.reconnect_max)
        return bounded * random.uniform(0.5, 1.0)

    @reconnect_interval.setter
    def reconnect_interval(self, value: float) -> None:
        self._base_interval = float(value)

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        if self._down_since is None and not self._close_called:
            self._down_since = asyncio.get_running_loop().time()
        await super()._on_connection_close(closing)

    async def _on_connected(self) -> None:
        await super()._on_connected()
        self._down_since = None


class AmqpBroker:
    """The ``Broker`` of ``amqp://`` and ``amqps://`` URLs."""

    def __init__(self, settings: Settings, dispatcher: Dispatcher, handlers: EventHandlers) -> None:
        self._settings = settings
        self._dispatcher = dispatcher
        self._handlers = handlers
        name = settings.service_name
        self.queue_name = name
        self.retry_queue_name = f"{name}.retry"
        self.dead_letter_queue_name = f"{name}.dead-letter"
        url = URL(settings.amqp_url.get_secret_value())
        if "heartbeat" not in url.query:
            url = url.update_query(heartbeat=settings.heartbeat)
        self._url = url
        self.safe_url = str(url.with_password("***") if url.password else url)
        self._connection: AbstractRobustConnection | None = None
        self._publishing: AbstractRobustChannel | None = None
        self._consuming: AbstractRobustChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._unroutable = UnroutableLog()

    async def connect(self) -> None:
        settings = self._settings
        try:
            async with asyncio.timeout(settings.connect_timeout):
                self._connection = await aio_pika.connect_robust(
                    self._url,
                    timeout=settings.connect_timeout,
                    reconnect_interval=settings.reconnect_interval,
                    client_properties={"connection_name": settings.service_name},
                    connection_class=BackoffConnection,
                )
                self._connection.reconnect_max = settings.reconnect_max
        except (TimeoutError, OSError, aiormq.exceptions.AMQPError) as exc:
            raise StartupError(
                f"RabbitMQ at {self.safe_url} could not be reached within "
                f"{settings.connect_timeout:g}s ({type(exc).__name__}: {exc}); start it or set "
                f"{ENV_PREFIX}AMQP_URL (memory:// runs without RabbitMQ)"
            ) from None
        self._connection.reconnect_callbacks.add(self._on_reconnect)
        try:
            await self._declare(self._connection)
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            await self.close()
            raise StartupError(
                f"RabbitMQ refused the service's topology: {exc}. A queue or exchange of that "
                "name exists with other arguments (for example a classic queue where "
                f"{ENV_PREFIX}QUEUE_TYPE says quorum); delete it or change the settings"
            ) from None
        log.info(
            "connected to RabbitMQ at %s: exchange %r, queue %r bound to %s",
            self.safe_url,
            settings.exchange,
            self.queue_name,
            ", ".join(self._handlers.patterns) or "nothing",
        )

    async def _declare(self, connection: AbstractRobustConnection) -> None:
        await self._open_publishing(connection)
        await self._open_consuming(connection)
        self._watchdog = asyncio.create_task(self._watch(), name="amqp-watchdog")

    async def _open_publishing(self, connection: AbstractRobustConnection) -> None:
        self._publishing = await connection.channel(publisher_confirms=True, on_return_raises=True)
        self._exchange = await self._publishing.declare_exchange(
            self._settings.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def _open_consuming(self, connection: AbstractRobustConnection) -> None:
        """Open the consuming channel and declare the queues and bindings on it."""
        settings = self._settings
        self._consuming = await connection.channel(publisher_confirms=False)
        await self._consuming.set_qos(prefetch_count=settings.prefetch)
        queue_type = {"x-queue-type": settings.queue_type}
        await self._consuming.declare_queue(
            self.dead_letter_queue_name, durable=True, arguments=queue_type
        )
        await self._consuming.declare_queue(
            self.retry_queue_name,
            durable=True,
            arguments={
                # Classic, whatever the service queue is: it only holds messages for a while.
                "x-queue-type": "classic",
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": self.queue_name,
            },
        )
        arguments: dict[str, Any] = {
            **queue_type,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.dead_letter_queue_name,
        }
        if settings.queue_type == "quorum":
            # Bounds redelivery of a message that crashes the process before any ack.
            arguments["x-delivery-limit"] = settings.delivery_limit
        self._queue = await self._consuming.declare_queue(
            self.queue_name, durable=True, arguments=arguments
        )
        for pattern in self._handlers.patterns:
            await self._queue.bind(settings.exchange, routing_key=pattern)

    async def _watch(self) -> None:
        """Re-establish what aio-pika's own recovery left broken.

        aio-pika restores channels and consumers after a reconnect or a server-side cancel, but
        a restore can be cancelled halfway (seen after a broker restart) and is then not tried
        again. A part found broken on two checks in a row, while the connection is up, is
        opened afresh on a new channel.
        """
        suspects: set[str] = set()
        while True:
            await asyncio.sleep(self._settings.watchdog_interval)
            try:
                broken = await self._broken_parts()
                for part in sorted(broken & suspects):
                    await self._reestablish(part)
                suspects = broken - suspects
            except CHANNEL_ERRORS as exc:
                log.warning("watchdog could not restore the AMQP channels yet: %s", exc)

    async def _broken_parts(self) -> set[str]:
        connection = self._connection
        if connection is None or not connection.connected.is_set():
            return set()  # reconnecting is aio-pika's job
        broken = set()
        if self._publishing is None or self._publishing.is_closed:
            broken.add("publishing")
        if self._consumer_tag is not None and not await self._consumer_registered():
            broken.add("consuming")
        return broken

    async def _consumer_registered(self) -> bool:
        if self._consuming is None or self._consuming.is_closed:
            return False
        try:
            async with asyncio.timeout(1):
                channel = cast(aiormq.Channel, await self._consuming.get_underlay_channel())
        except CHANNEL_ERRORS:  # TimeoutError is an OSError
            return False
        return self._consumer_tag in channel.consumers

    async def _reestablish(self, part: str) -> None:
        connection = self._connection
        if connection is None:
            return
        if part == "publishing":
            log.warning("the publishing channel was not restored; opening a new one")
            old = self._publishing
            await self._open_publishing(connection)
        else:
            log.warning("the consumer of %s is not registered; consuming again", self.queue_name)
            old = self._consuming
            await self._open_consuming(connection)
            assert self._queue is not None  # declared just above
            self._consumer_tag = await self._queue.consume(self._on_message)
        if old is not None:
            with contextlib.suppress(*CHANNEL_ERRORS):
                await old.close()

    async def publish(self, routing_key: str, event: BaseModel) -> None:
        if self._exchange is None:
            raise PublishError(f"cannot publish {routing_key}: not connected to RabbitMQ")
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=uuid4().hex,
            timestamp=datetime.now(UTC),
            app_id=self._settings.service_name,
        )
        try:
            await self._send(self._exchange, message, routing_key)
        except aiormq.exceptions.PublishError:
            self._unroutable.report(routing_key)

    async def _send(self, exchange: AbstractExchange, message: aio_pika.Message, key: str) -> None:
        """Publish and wait for the confirm; raise ``PublishError`` if it does not come in time.

        A channel being restored after a reconnect is waited for, within the same time limit.
        ``aiormq.exceptions.PublishError`` (unroutable) is left to the caller.
        """
        timeout = self._settings.publish_timeout
        try:
            async with asyncio.timeout(timeout):
                if self._publishing is not None:
                    await self._publishing.ready()
                await exchange.publish(message, routing_key=key, mandatory=True)
        except TimeoutError:
            raise PublishError(
                f"RabbitMQ at {self.safe_url} did not confirm a {key} message within {timeout:g}s"
            ) from None
        except aiormq.exceptions.PublishError:
            raise
        except CHANNEL_ERRORS as exc:
            raise PublishError(
                f"RabbitMQ at {self.safe_url} refused a {key} message: {type(exc).__name__}: {exc}"
            ) from exc

    async def _send_to_queue(
        self, message: AbstractIncomingMessage, queue: str, headers: Headers, **extra: Any
    ) -> None:
        if self._publishing is None:
            raise PublishError(f"cannot move a message to {queue}: not connected to RabbitMQ")
        copy = aio_pika.Message(
            message.body,
            headers=dict(headers),
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id or uuid4().hex,
            timestamp=message.timestamp,
            app_id=message.app_id,
            **extra,
        )
        try:
            await self._send(self._publishing.default_exchange, copy, queue)
        except aiormq.exceptions.PublishError:
            raise PublishError(f"queue {queue} does not exist") from None

    async def start_consuming(self) -> None:
        if self._queue is not None and self._consumer_tag is None:
            self._consumer_tag = await self._queue.consume(self._on_message)

    async def stop_consuming(self) -> None:
        tag, self._consumer_tag = self._consumer_tag, None
        connection = self._connection
        if tag is None or self._queue is None or connection is None:
            return
        if not connection.connected.is_set():
            return  # the consumer went with the connection; waiting for it would hang shutdown
        try:
            # aio-pika's own timeout starts only once the channel is ready; this one bounds it all.
            async with asyncio.timeout(self._settings.publish_timeout):
                await self._queue.cancel(tag)
        except CHANNEL_ERRORS:  # TimeoutError is an OSError
            log.warning("could not cancel the consumer cleanly; closing the channel stops it")

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            await asyncio.gather(self._watchdog, return_exceptions=True)
            self._watchdog = None
        await self.stop_consuming()
        connection, self._connection = self._connection, None
        self._exchange = self._queue = self._publishing = self._consuming = None
        if connection is not None:
            await connection.close()

    async def status(self) -> BrokerStatus:
        connection = self._connection
        if connection is None or connection.is_closed:
            return BrokerStatus(False, False, f"not connected to RabbitMQ at {self.safe_url}")
        if not connection.connected.is_set():
            return BrokerStatus(
                False, False, f"connection to RabbitMQ at {self.safe_url} lost; reconnecting"
            )
        if self._publishing is None or self._publishing.is_closed:
            return BrokerStatus(False, False, "the publishing channel is being restored")
        if self._consumer_tag is None:
            return BrokerStatus(True, False, "the service's consumer is not registered")
        if not await self._consumer_registered():
            return BrokerStatus(
                True, False, f"the consumer of queue {self.queue_name} is being restored"
            )
        return BrokerStatus(True, True, f"consuming {self.queue_name} at {self.safe_url}")

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            await self._dispatcher.handle(_AmqpDelivery(self, message))
        except CHANNEL_ERRORS as exc:
            # The channel went away before the message was settled: RabbitMQ redelivers it.
            log.warning(
                "could not settle a %s message (%s); it will be redelivered",
                message.routing_key,
                exc,
            )

    def _on_reconnect(self, *_: object) -> None:
        log.info("reconnected to RabbitMQ at %s; topology and consumer restored", self.safe_url)


class _AmqpDelivery:
    def __init__(self, broker: AmqpBroker, message: AbstractIncomingMessage) -> None:
        self._broker = broker
        self._message = message
        self.routing_key = message.routing_key or ""
        self.body = message.body
        self.headers: Headers = dict(message.headers or {})

    async def ack(self) -> None:
        await self._message.ack()

    async def retry(self, headers: Headers) -> None:
        broker = self._broker
        await self._move(broker.retry_queue_name, headers, expiration=broker._settings.retry_delay)

    async def dead_letter(self, headers: Headers) -> None:
        await self._move(self._broker.dead_letter_queue_name, headers)

    async def _move(self, queue: str, headers: Headers, **extra: Any) -> None:
        """Copy the message to ``queue`` and ack it, in that order: a crash between the two
        duplicates the message, never loses it."""
        try:
            await self._broker._send_to_queue(self._message, queue, headers, **extra)
        except PublishError as exc:
            # Rejecting hands the message to the service queue's dead-letter exchange, so it is
            # kept in the dead-letter queue rather than requeued without bound.
            log.error("could not move a message to %s (%s); rejecting it instead", queue, exc)
            await self._message.reject(requeue=False)
            return
        await self._message.ack()
