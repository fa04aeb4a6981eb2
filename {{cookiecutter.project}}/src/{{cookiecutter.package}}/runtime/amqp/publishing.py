"""Publishing to RabbitMQ with confirms, on a channel of its own so that a slow consumer never
holds up a publish. ``publish`` returns once RabbitMQ has the message, and raises
``PublishError`` when it does not confirm within ``publish_timeout``; it never hangs and never
claims a success it did not get. While the connection is being restored, a publish waits for it
within that same time. Once publishes have gone unconfirmed for a publish timeout with none
confirmed between, ``unconfirmed`` says so, for readiness, until one is confirmed again or
``UNCONFIRMED_FOR`` publish timeouts pass without another failure.
Example use::

    publisher = AmqpPublisher(settings, link, metrics, on_refused=reopen_the_channel)
    publisher.attach(channel, exchange)  # after each (re)connect; detach() when it is lost
    await publisher.publish("measurement.recorded", event)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractIncomingMessage
from pydantic import BaseModel

from ..correlation import CORRELATION_ID
from ..messaging import Headers, PublishError, UnroutableLog
from ..metrics import Metrics, Published
from ..settings import RuntimeSettings
from .connection import AMQP_ERRORS, Link, describe

# How long, in publish timeouts, readiness reports a publish RabbitMQ did not confirm. It must
# end by itself: an unready replica gets no requests, so no publish would ever end it. It starts
# one publish timeout after the first failure, which a quorum queue's new leader election
# (a second or two) does not reach.
UNCONFIRMED_FOR = 3


class AmqpPublisher:
    """Sends the service's events to the shared exchange, and message copies to its queues."""

    def __init__(
        self,
        settings: RuntimeSettings,
        link: Link,
        metrics: Metrics,
        on_refused: Callable[[str], None],
    ) -> None:
        self._metrics = metrics
        self._on_refused = on_refused
        self._timeout = settings.publish_timeout
        self._app_id = settings.service_name
        self._link = link
        self._failing_since: float | None = None  # the first failure since the last confirm
        self._failed = (0.0, "")  # when the last failure came, and why
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._attached = asyncio.Event()
        self._closed = False
        self._unroutable = UnroutableLog()

    def attach(self, channel: AbstractChannel, exchange: AbstractExchange) -> None:
        """Publish on ``channel`` (with confirms) from now on."""
        self._channel, self._exchange = channel, exchange
        self._attached.set()

    def detach(self) -> None:
        """The channel is gone: publishes wait for the next ``attach``, within their timeout."""
        self._attached.clear()
        self._channel = self._exchange = None

    def close(self) -> None:
        """Publishes fail at once from now on."""
        self._closed = True
        self.detach()

    def unconfirmed(self) -> str:
        """Why publishes fail, if RabbitMQ has confirmed none for a while; else ``""``."""
        since = self._failing_since
        if since is None:
            return ""
        now = time.monotonic()
        last, reason = self._failed
        if now - last > UNCONFIRMED_FOR * self._timeout:
            self._failing_since = None
            return ""
        if now - since < self._timeout:
            return ""
        return f"{reason}; none confirmed for {now - since:.0f}s"

    async def publish(
        self,
        routing_key: str,
        event: BaseModel,
        *,
        headers: Headers | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Send ``event`` to the shared exchange; return once RabbitMQ confirmed it."""
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            headers=dict(headers or {}),
            correlation_id=correlation_id or CORRELATION_ID.get(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=uuid4().hex,
            timestamp=datetime.now(UTC),
            app_id=self._app_id,
        )
        started = time.perf_counter()
        outcome: Published = "confirmed"
        try:
            await self._send(message, routing_key, to_queue=False)
        except aiormq.exceptions.PublishError:
            outcome = "unroutable"
            self._unroutable.report(routing_key)
        except BaseException:
            outcome = "failed"
            raise
        finally:
            self._metrics.published(routing_key, outcome, time.perf_counter() - started)

    async def copy_to_queue(
        self,
        message: AbstractIncomingMessage,
        queue: str,
        headers: Headers,
        expiration: float | None = None,
    ) -> None:
        """Send a copy of a delivered ``message`` straight to ``queue``, with ``headers``."""
        copy = aio_pika.Message(
            message.body,
            headers=dict(headers),
            content_type=message.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message.message_id or uuid4().hex,
            correlation_id=message.correlation_id,
            timestamp=message.timestamp,
            app_id=message.app_id,
            expiration=expiration,
        )
        try:
            await self._send(copy, queue, to_queue=True)
        except aiormq.exceptions.PublishError:
            raise PublishError(f"queue {queue} does not exist") from None

    async def _send(self, message: aio_pika.Message, key: str, *, to_queue: bool) -> None:
        """Publish and wait for the confirm within ``publish_timeout``, waiting for a channel
        first if the connection is being restored. ``aiormq.exceptions.PublishError``
        (returned as unroutable) is left to the caller."""
        if self._closed:
            raise PublishError(f"cannot publish {key}: the connection to RabbitMQ is closed")
        channel: AbstractChannel | None = None
        try:
            async with asyncio.timeout(self._timeout):
                await self._attached.wait()
                # A loss can come between the wake-up and here: wait() resumes a turn later.
                channel, exchange = self._channel, self._exchange
                if to_queue and channel is not None:
                    exchange = channel.default_exchange
                if exchange is None:
                    raise PublishError(f"the connection to RabbitMQ was lost; {key} not sent")
                await exchange.publish(message, routing_key=key, mandatory=True)
        except TimeoutError:
            if not self._attached.is_set():
                raise PublishError(
                    f"no connection to {self._link.places} within {self._timeout:g}s; "
                    f"the {key} message was not sent"
                ) from None
            raise self._unconfirmed(
                f"RabbitMQ at {self._link.safe_url} did not confirm a {key} message within "
                f"{self._timeout:g}s (a quorum queue without a majority of its nodes confirms "
                "nothing)"
            ) from None
        except aiormq.exceptions.PublishError:
            raise
        except aiormq.exceptions.DeliveryError as exc:
            reason = f"RabbitMQ at {self._link.safe_url} refused a {key} message: {describe(exc)}"
            if channel is self._channel:
                # RabbitMQ 3.10 can leave a channel that refuses every publish to a quorum queue
                # from then on (one opened while the queue elected a leader): use a new one.
                self._on_refused(reason)
            raise self._unconfirmed(reason) from exc
        except AMQP_ERRORS as exc:
            raise PublishError(
                f"RabbitMQ at {self._link.safe_url} did not take a {key} message: {describe(exc)}"
            ) from exc
        self._failing_since = None

    def _unconfirmed(self, reason: str) -> PublishError:
        now = time.monotonic()
        self._failed = (now, reason)
        if self._failing_since is None:
            self._failing_since = now
        return PublishError(reason)
