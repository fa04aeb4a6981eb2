"""Event handlers and the rules every delivered message follows, whichever broker carries it.

The service declares what it listens to; the broker hands each delivery to ``Dispatcher.handle``,
which decodes, validates, runs the handler and then acks, retries or dead-letters. Example use::

    events = EventHandlers()

    @events.subscribe("measurement.recorded", MeasurementRecorded)
    async def on_recorded(app: web.Application, event: MeasurementRecorded) -> None: ...

Rules (the same for RabbitMQ and ``memory://``):

- ack only after the handler returned;
- a handler that raises is retried after ``retry_delay``, up to ``max_attempts`` runs in all,
  counted in the ``x-attempts`` header; then the message is dead-lettered;
- a body that is not valid JSON or not a valid payload is dead-lettered at once: retrying cannot
  fix it. Payloads are validated strictly (see ``validate``): ``"12"`` or ``false`` is not a
  number;
- a dead-lettered message carries headers saying why (``x-error-type``, ``x-error``,
  ``x-attempts``, ``x-original-routing-key``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from aiohttp import web
from pydantic import BaseModel, ValidationError

from .correlation import CORRELATION_ID, new_id, plain
from .metrics import Consumed, Metrics
from .topics import check_pattern, topic_matches

log = logging.getLogger(__name__)

ATTEMPTS = "x-attempts"
ORIGINAL_ROUTING_KEY = "x-original-routing-key"
ERROR_TYPE = "x-error-type"
ERROR = "x-error"
# The metrics' label for a routing key no handler takes: any key may come off the wire.
UNHANDLED = "unhandled"

Headers = Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)
Handler = Callable[[web.Application, M], Awaitable[None]]


class PublishError(Exception):
    """The broker did not confirm a message in time, or refused it."""


class Publisher(Protocol):
    """What the service's code uses to send events."""

    async def publish(
        self,
        routing_key: str,
        event: BaseModel,
        *,
        headers: Headers | None = None,
        correlation_id: str | None = None,
    ) -> None:
        """Send ``event`` to the shared exchange; return once the broker has confirmed it.

        The message carries ``headers``, and ``correlation_id`` or else the id of the work at
        hand (``correlation.CORRELATION_ID``), so whoever handles it can tell what it is for.
        """


class UnroutableLog:
    """Warns once per routing key that a published event reached no queue, then stays quiet.

    An event nobody subscribes to yet is normal in a system of services, so it is not an error;
    but the first one is worth a line, since a typo in a routing key looks just the same.
    """

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def report(self, routing_key: str) -> None:
        if routing_key in self._seen:
            log.debug("no queue is bound for %r; the event was dropped", routing_key)
            return
        self._seen.add(routing_key)
        log.warning(
            "no queue is bound for %r; the event was dropped (said once per routing key)",
            routing_key,
        )


class Delivery(Protocol):
    """One message handed to the dispatcher, with the broker-specific ways to settle it."""

    routing_key: str
    body: bytes
    headers: Headers
    message_id: str | None
    correlation_id: str | None
    redelivered: bool

    async def ack(self) -> None:
        """Settle the message: it is done."""

    async def retry(self, headers: Headers) -> None:
        """Send a copy back to the service queue after the retry delay, then ack this one."""

    async def dead_letter(self, headers: Headers) -> None:
        """Send a copy to the dead-letter queue, then ack this one."""


@dataclass(frozen=True)
class Subscription(Generic[M]):
    """A routing-key pattern, the payload model it carries and the function that handles it."""

    pattern: str
    model: type[M]
    handler: Handler[M]

    def matches(self, routing_key: str) -> bool:
        return topic_matches(self.pattern, routing_key)


class EventHandlers:
    """The service's event handlers; each pattern becomes a binding of the service queue.

    The app reads them when it is built; subscribing after that raises ``RuntimeError``, since
    the queue would never be bound to the new pattern.
    """

    def __init__(self) -> None:
        self.subscriptions: list[Subscription[Any]] = []
        self._frozen = False

    def freeze(self) -> None:
        """Refuse further subscriptions; ``create_app`` calls this."""
        self._frozen = True

    def subscribe(self, pattern: str, model: type[M]) -> Callable[[Handler[M]], Handler[M]]:
        """Register the decorated function for messages whose routing key matches ``pattern``.

        ``*`` stands for one dot-separated word and ``#`` for zero or more, as in a topic
        exchange. A message goes to the first registered handler that matches.
        """
        check_pattern(pattern)

        def register(handler: Handler[M]) -> Handler[M]:
            if self._frozen:
                raise RuntimeError(
                    f"{handler.__name__} subscribed to {pattern!r} after the app was built, so "
                    "no message would reach it; subscribe at import time, before create_app"
                )
            self.subscriptions.append(Subscription(pattern, model, handler))
            return handler

        return register

    @property
    def patterns(self) -> list[str]:
        return list(dict.fromkeys(s.pattern for s in self.subscriptions))

    def find(self, routing_key: str) -> Subscription[Any] | None:
        return next((s for s in self.subscriptions if s.matches(routing_key)), None)


class Dispatcher:
    """Runs the handler of each delivery and settles it by the rules in this module's docstring.

    It also tracks the handlers in flight, so shutdown can let them finish.
    """

    def __init__(
        self, app: web.Application, handlers: EventHandlers, max_attempts: int, metrics: Metrics
    ) -> None:
        self._app = app
        self._handlers = handlers
        self._max_attempts = max_attempts
        self._metrics = metrics
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def handle(self, delivery: Delivery) -> None:
        """Handle one delivery; brokers call this in a task of its own per message."""
        task = cast(asyncio.Task[Any], asyncio.current_task())
        self._in_flight.add(task)
        self._metrics.in_flight(1)
        started = time.perf_counter()
        # Each delivery runs in a task of its own, so this id stays with this one.
        CORRELATION_ID.set(plain(delivery.correlation_id) or plain(delivery.message_id) or new_id())
        try:
            pattern, outcome = await self._handle(delivery)
            self._metrics.consumed(pattern, outcome, time.perf_counter() - started)
        finally:
            self._in_flight.discard(task)
            self._metrics.in_flight(-1)

    async def drain(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for handlers in flight; cancel the rest, left unacked."""
        if not self._in_flight:
            return
        log.info("waiting up to %.1fs for %d event handlers", grace, len(self._in_flight))
        _, pending = await asyncio.wait(set(self._in_flight), timeout=max(grace, 0))
        for task in pending:
            task.cancel()
        if pending:
            log.warning(
                "cancelled %d event handlers at shutdown; the broker redelivers them", len(pending)
            )
            await asyncio.wait(pending, timeout=1)

    async def _handle(self, delivery: Delivery) -> tuple[str, Consumed]:
        """Settle ``delivery``; return its subscription's pattern (a bounded label for the
        metrics, unlike the routing key) and the outcome."""
        original = delivery.headers.get(ORIGINAL_ROUTING_KEY)
        routing_key = original if isinstance(original, str) and original else delivery.routing_key
        attempt = _attempts(delivery.headers) + 1
        subscription = self._handlers.find(routing_key)
        if subscription is None:
            await self._dead_letter(delivery, routing_key, attempt, LookupError("no handler"))
            return UNHANDLED, "dead_lettered"
        try:
            event = validate(subscription.model, delivery.body)
        except ValidationError as exc:
            await self._dead_letter(delivery, routing_key, attempt, exc)
            return subscription.pattern, "invalid"
        try:
            await subscription.handler(self._app, event)
        except Exception as exc:
            if attempt >= self._max_attempts:
                await self._dead_letter(delivery, routing_key, attempt, exc)
                return subscription.pattern, "dead_lettered"
            log.warning(
                "handler of %s failed (attempt %d of %d), retrying: %s: %s",
                routing_key,
                attempt,
                self._max_attempts,
                type(exc).__name__,
                exc,
            )
            await delivery.retry(
                {**delivery.headers, ATTEMPTS: attempt, ORIGINAL_ROUTING_KEY: routing_key}
            )
            return subscription.pattern, "retried"
        await delivery.ack()
        return subscription.pattern, "acked"

    async def _dead_letter(
        self, delivery: Delivery, routing_key: str, attempt: int, exc: Exception
    ) -> None:
        reason = _reason(exc)
        log.error(
            "dead-lettered a %s message after %d attempt(s): %s: %s",
            routing_key,
            attempt,
            type(exc).__name__,
            reason,
            exc_info=exc if not isinstance(exc, ValidationError | LookupError) else None,
        )
        await delivery.dead_letter(
            {
                **delivery.headers,
                ATTEMPTS: attempt,
                ORIGINAL_ROUTING_KEY: routing_key,
                ERROR_TYPE: type(exc).__name__,
                ERROR: reason,
            }
        )


def validate(model: type[M], raw: bytes) -> M:
    """``raw`` JSON as ``model``, strictly: each value must have the JSON type its schema says.

    Pydantic's default (lax) mode takes ``"12"`` or ``false`` for a number, so a document would
    promise one thing and the service accept another. A model that wants lax fields sets
    ``strict`` in its ``model_config`` itself (``strict=True`` plus ``Field(strict=False)``
    on those fields).
    """
    strict = None if "strict" in model.model_config else True
    return model.model_validate_json(raw, strict=strict)


def _attempts(headers: Headers) -> int:
    """Runs so far, from our own header; a missing or unreadable value counts as none."""
    value = headers.get(ATTEMPTS, 0)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and value > 0 else 0


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return f"{exc.error_count()} validation error(s); {where}: {first['msg']}"[:500]
    return str(exc)[:500]
