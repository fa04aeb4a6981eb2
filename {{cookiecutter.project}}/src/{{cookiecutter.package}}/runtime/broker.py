"""The broker the service talks to, and its place in the app's start-up and shutdown.

``amqp://`` and ``amqps://`` URLs get RabbitMQ (``amqp/``); ``memory://`` gets the in-process
broker (``memory.py``). Both follow the rules in ``messaging.py``. Example use::

    app.cleanup_ctx.append(broker.connection)  # connect and declare topology; close last
    app.cleanup_ctx.append(broker.consumer)  # start consuming; drain in-flight handlers
    await app[PUBLISHER].publish("measurement.recorded", event)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from aiohttp import web

from .dispatch import Dispatcher
from .lifecycle import SHUTDOWN
from .messaging import DeclaredPublisher, EventHandlers, Publisher
from .metrics import METRICS, Metrics
from .settings import SETTINGS, RuntimeSettings

if TYPE_CHECKING:
    from .spans import Tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrokerStatus:
    """What readiness reports about the broker.

    ``connected``: the connection and the publishing channel are open, so a publish can succeed.
    ``consuming``: the broker has the service's consumer registered.
    ``confirming``: the broker confirmed the last publish, or no publish failed lately (a
    cluster that lost its majority keeps connections open but confirms nothing).
    """

    connected: bool
    consuming: bool
    detail: str
    confirming: bool = True


class Broker(Publisher, Protocol):
    """A connection to a message broker, seen from the service."""

    async def connect(self) -> None:
        """Connect and declare the topology; raise ``StartupError`` saying how to fix it."""

    async def start_consuming(self) -> None:
        """Start handing deliveries of the service queue to the dispatcher."""

    async def stop_consuming(self) -> None:
        """Take no new deliveries; handlers in flight go on. Safe to call twice."""

    async def close(self) -> None:
        """Close the connection; unacked messages go back to the queue. Safe to call twice."""

    async def status(self) -> BrokerStatus:
        """Whether the connection is up, the service's consumer registered and publishes
        confirmed."""


class StartupError(Exception):
    """The service cannot start; the message says what to do about it."""


# Protocols are not concrete classes, so these keys name their type as a parameter.
BROKER = web.AppKey[Broker]("broker")
PUBLISHER = web.AppKey[Publisher]("publisher")
DISPATCHER = web.AppKey("dispatcher", Dispatcher)


def setup(app: web.Application, handlers: EventHandlers, tracing: Tracing | None) -> None:
    """Create the broker chosen by the settings; it connects when the app starts.

    ``app[PUBLISHER]`` publishes only the events ``handlers`` declares. With ``tracing``, each
    publish and each delivery handled has a span.
    """
    settings = app[SETTINGS]
    handlers.freeze()
    metrics = app[METRICS]
    dispatcher = Dispatcher(app, handlers, settings.max_attempts, metrics, tracing)
    broker = create_broker(settings, dispatcher, handlers, metrics)
    app[DISPATCHER] = dispatcher
    app[BROKER] = broker
    app[PUBLISHER] = DeclaredPublisher(broker, handlers, tracing)

    async def report_link() -> None:
        metrics.connected((await broker.status()).connected)

    metrics.before_scrape(report_link)


def create_broker(
    settings: RuntimeSettings, dispatcher: Dispatcher, handlers: EventHandlers, metrics: Metrics
) -> Broker:
    """The broker for ``settings.amqp_url`` (whose scheme the settings have checked)."""
    if settings.in_process_broker:
        from .memory import MemoryBroker

        return MemoryBroker(settings, dispatcher, handlers, metrics)
    from .amqp import AmqpBroker

    return AmqpBroker(settings, dispatcher, handlers, metrics)


async def connection(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: connect before anything publishes; close after everything stopped."""
    broker = app[BROKER]
    await broker.connect()
    yield
    await broker.close()


async def consumer(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: consume once everything handlers use is up; drain handlers at shutdown."""
    broker = app[BROKER]
    await broker.start_consuming()
    yield
    await broker.stop_consuming()  # already done on_shutdown unless start-up failed midway
    await asyncio.sleep(0)  # let deliveries that just arrived enter their handlers
    await app[DISPATCHER].drain(app[SHUTDOWN].remaining())


async def stop_deliveries(app: web.Application) -> None:
    """``on_shutdown`` hook: take no new messages while in-flight HTTP requests finish."""
    await app[BROKER].stop_consuming()
