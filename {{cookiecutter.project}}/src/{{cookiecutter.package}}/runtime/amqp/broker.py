"""The ``Broker`` of ``amqp://`` and ``amqps://`` URLs: one connection with two channels, and
one loop, the keeper, that puts back whatever breaks.

- The connection drops (a broker restart, a network cut, missed heartbeats): the keeper
  reconnects with backoff (``connection.py``), then reopens both channels.
- A channel is closed by RabbitMQ (say, a publish to an exchange someone deleted): the keeper
  reopens that channel and declares its part of the topology again, bindings included.
- RabbitMQ cancels the consumer (say, the queue was deleted): the keeper declares the queue and
  its bindings again on a new channel and consumes again.

Readiness is 503, with the reason, until the keeper has put everything back. Example use::

    broker = AmqpBroker(settings, dispatcher, events, metrics)
    await broker.connect()
    await broker.publish("measurement.recorded", event)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Literal

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue
from pydantic import BaseModel

from ..broker import BrokerStatus, StartupError
from ..dispatch import Dispatcher
from ..messaging import EventHandlers, Headers
from ..metrics import Metrics
from ..settings import ENV_PREFIX, RuntimeSettings
from ..tasks import keep_running
from .connection import AMQP_ERRORS, Backoff, Link, describe
from .consuming import AmqpConsumer, Settler
from .publishing import AmqpPublisher
from .topology import Topology

log = logging.getLogger(__name__)

Part = Literal["connection", "publishing", "consuming"]
PARTS: tuple[Part, ...] = ("publishing", "consuming")  # the channels, in the order they open
EVERYTHING: frozenset[Part] = frozenset({"connection", *PARTS})


class AmqpBroker:
    """RabbitMQ, as the service sees it: publish, consume, and a status for readiness."""

    def __init__(
        self,
        settings: RuntimeSettings,
        dispatcher: Dispatcher,
        handlers: EventHandlers,
        metrics: Metrics,
    ) -> None:
        self._link = Link(settings)
        self.topology = Topology(settings, handlers.patterns)
        self._metrics = metrics
        self._publisher = AmqpPublisher(settings, self._link, metrics, self._refused)
        settler = Settler(self._publisher, self.topology.names, settings.retry_delay)
        self._consumer = AmqpConsumer(dispatcher, settler)
        self._cancel_timeout = settings.publish_timeout
        self._connection: AbstractConnection | None = None
        self._channels: dict[Part, AbstractChannel] = {}
        self._queue: AbstractQueue | None = None
        self._broken: set[Part] = set()
        self._reason = ""
        self._wake = asyncio.Event()
        self._repairs = Backoff(settings.reconnect_interval, settings.reconnect_max)
        self._consume = False
        self._keeper: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def safe_url(self) -> str:
        """The RabbitMQ node in use (or last tried), without its password."""
        return self._link.safe_url

    async def connect(self) -> None:
        connection = await self._link.open()
        self._watch_connection(connection)
        try:
            await self._open("publishing")
            await self._open("consuming")
        except aiormq.exceptions.ChannelPreconditionFailed as exc:
            await self.close()
            hint = (
                f"; {ENV_PREFIX}QUORUM_GROUP_SIZE=0 keeps the queues template 3 declared"
                if self.topology.declared_by_template_3(str(exc))
                else ""
            )
            raise StartupError(
                f"RabbitMQ refused the service's topology: {exc}. A queue or exchange of that "
                "name exists with other arguments (for example a classic queue where "
                f"{ENV_PREFIX}QUEUE_TYPE says quorum); delete it or change the settings{hint}"
            ) from None
        except AMQP_ERRORS as exc:
            await self.close()
            raise StartupError(
                f"RabbitMQ at {self.safe_url} failed while the service declared its queues: "
                f"{describe(exc)}"
            ) from None
        self._keeper = asyncio.create_task(
            keep_running("the AMQP connection keeper", self._keep), name="amqp-keeper"
        )
        names = self.topology.names
        log.info(
            "connected to RabbitMQ at %s: exchange %r, queue %r bound to %s",
            self.safe_url,
            self.topology.exchange,
            names.service,
            ", ".join(self.topology.patterns) or "nothing",
        )

    async def publish(
        self,
        routing_key: str,
        event: BaseModel,
        *,
        headers: Headers | None = None,
        correlation_id: str | None = None,
    ) -> None:
        await self._publisher.publish(
            routing_key, event, headers=headers, correlation_id=correlation_id
        )

    async def start_consuming(self) -> None:
        self._consume = True
        if self._queue is not None and not self._consumer.registered:
            await self._consumer.start(self._queue)
        # Otherwise the consuming channel is being reopened, and the keeper starts consuming.

    async def stop_consuming(self) -> None:
        self._consume = False
        if not self._connected() or "consuming" in self._broken:
            self._consumer.forget()  # it went with its channel; cancelling would hang
            return
        await self._consumer.stop(self._cancel_timeout)

    async def close(self) -> None:
        self._closing = True
        await self.stop_consuming()
        self._publisher.close()
        # The connection first: a repair under way then fails cleanly and the keeper goes idle,
        # where cancelling it cannot interrupt a channel operation halfway.
        connection, self._connection = self._connection, None
        self._channels.clear()
        if connection is not None:
            try:
                async with asyncio.timeout(self._cancel_timeout):
                    await connection.close()
            except AMQP_ERRORS as exc:  # TimeoutError is an OSError
                log.warning("the connection to RabbitMQ did not close cleanly: %s", describe(exc))
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None

    async def status(self) -> BrokerStatus:
        if self._closing or self._connection is None:
            return BrokerStatus(False, False, f"not connected to {self._link.places}")
        if "connection" in self._broken:
            return BrokerStatus(False, False, self._link.outage())
        if "publishing" in self._broken:
            return BrokerStatus(False, False, f"reopening the publishing channel: {self._reason}")
        if not self._consume:
            return BrokerStatus(True, False, "the service's consumer is not registered")
        if "consuming" in self._broken or not self._consumer.registered:
            queue = self.topology.names.service
            return BrokerStatus(True, False, f"consuming {queue} again after: {self._reason}")
        unconfirmed = self._publisher.unconfirmed()
        if unconfirmed:
            return BrokerStatus(True, True, unconfirmed, confirming=False)
        return BrokerStatus(
            True, True, f"consuming {self.topology.names.service} at {self.safe_url}"
        )

    async def _keep(self) -> None:
        """Wait for something to break, then put it back; run by ``keep_running``."""
        while True:
            if self._closing or not self._broken:
                await self._wake.wait()
            self._wake.clear()
            if not self._closing:
                await self._repair()

    async def _repair(self) -> None:
        """One round of repair; what is still broken after it waits for the next round."""
        reason = self._reason
        channel_trouble = "connection" not in self._broken
        if not channel_trouble:
            self._watch_connection(await self._link.reconnect(reason))
            self._broken.discard("connection")
            self._metrics.reconnected()
        for part in PARTS:
            if part not in self._broken:
                continue
            try:
                await self._open(part)
            except AMQP_ERRORS as exc:
                if self._closing:
                    return
                if not self._connected():
                    self._trouble(EVERYTHING, describe(exc))
                    return
                pause = self._repairs.next()
                log.warning(
                    "could not reopen the %s channel (%s); trying again in %.1fs",
                    part,
                    describe(exc),
                    pause,
                )
                await asyncio.sleep(pause)
                return
        if channel_trouble:
            log.warning("%s; reopened it", reason)
        self._repairs.reset()
        self._link.recovered()

    async def _open(self, part: Part) -> None:
        """Open ``part``'s channel afresh on the current connection and declare its topology."""
        connection = self._connection
        if connection is None:  # closed meanwhile
            raise aiormq.exceptions.ConnectionClosed(320, "the broker was closed")
        old = self._channels.pop(part, None)
        if old is not None and not old.is_closed:
            with contextlib.suppress(*AMQP_ERRORS):
                await old.close()
        publishing = part == "publishing"
        channel = await connection.channel(
            publisher_confirms=publishing, on_return_raises=publishing
        )
        self._channels[part] = channel
        channel.close_callbacks.add(self._on_channel_closed(part, channel))
        if publishing:
            self._publisher.attach(channel, await self.topology.declare_exchange(channel))
            if self._queue is not None and "consuming" not in self._broken:
                # The exchange may have been deleted, and its bindings with it.
                await self.topology.bind(self._queue)
        else:
            self._queue = await self.topology.declare_queues(channel)
            underlay = await channel.get_underlay_channel()
            underlay.on_consumer_cancel_callbacks.add(self._on_consumer_cancelled(channel))
            if self._consume:
                await self._consumer.start(self._queue)
        self._broken.discard(part)

    def _connected(self) -> bool:
        connection = self._connection
        return connection is not None and connection.connected.is_set()

    def _watch_connection(self, connection: AbstractConnection) -> None:
        self._connection = connection

        def closed(_: object, exc: BaseException | None = None) -> None:
            if connection is self._connection:
                self._trouble(EVERYTHING, describe(exc))

        connection.close_callbacks.add(closed)

    def _on_channel_closed(
        self, part: Part, channel: AbstractChannel
    ) -> Callable[[object, BaseException | None], None]:
        def closed(_: object, exc: BaseException | None = None) -> None:
            if self._channels.get(part) is channel:
                self._trouble({part}, f"the {part} channel was closed ({describe(exc)})")

        return closed

    def _on_consumer_cancelled(self, channel: AbstractChannel) -> Callable[[object], None]:
        def cancelled(_: object) -> None:
            if self._channels.get("consuming") is channel:
                queue = self.topology.names.service
                self._trouble({"consuming"}, f"RabbitMQ cancelled the consumer of {queue}")

        return cancelled

    def _refused(self, reason: str) -> None:
        """The publisher's channel refused a publish: reopen it (see ``AmqpPublisher``)."""
        self._trouble({"publishing"}, f"the publishing channel refused a publish ({reason})")

    def _trouble(self, parts: frozenset[Part] | set[Part], reason: str) -> None:
        """Mark ``parts`` broken and wake the keeper; ignored once the broker is closing."""
        if self._closing:
            return
        if "connection" in parts:
            self._channels.clear()  # gone with it; their late close callbacks are ignored
            self._queue = None
        if "publishing" in parts:
            self._publisher.detach()
        if "consuming" in parts:
            self._consumer.forget()
        self._broken |= parts
        self._reason = reason
        self._wake.set()
