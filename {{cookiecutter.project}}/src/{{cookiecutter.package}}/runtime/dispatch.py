"""The rules every delivered message follows, whichever broker carries it.

The broker hands each delivery to ``Dispatcher.handle``, which decodes, validates, runs the
handler and then acks, retries or dead-letters. Example use::

    dispatcher = Dispatcher(app, events, max_attempts=3, metrics=metrics)
    await dispatcher.handle(delivery)  # in a task of its own per message

Rules (the same for RabbitMQ and ``memory://``):

- ack only after the handler returned;
- a handler that raises is retried after ``retry_delay``, up to ``max_attempts`` runs in all,
  counted in the ``x-attempts`` header; then the message is dead-lettered;
- a body that is not valid JSON or not a valid payload is dead-lettered at once: retrying cannot
  fix it. Payloads are validated strictly (see ``messaging.validate``): ``"12"`` or ``false`` is
  not a number;
- a dead-lettered message carries headers saying why (``x-error-type``, ``x-error``,
  ``x-attempts``, ``x-original-routing-key``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, cast

from aiohttp import web
from pydantic import ValidationError

from .correlation import CORRELATION_ID, new_id, plain
from .messaging import EventHandlers, Handler, HandlerWithInfo, Headers, MessageInfo, validate
from .metrics import Consumed, Metrics

if TYPE_CHECKING:
    from .spans import Tracing

log = logging.getLogger(__name__)

ATTEMPTS = "x-attempts"
ORIGINAL_ROUTING_KEY = "x-original-routing-key"
ERROR_TYPE = "x-error-type"
ERROR = "x-error"
# The metrics' label for a routing key no handler takes: any key may come off the wire.
UNHANDLED = "unhandled"


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


class Dispatcher:
    """Runs the handler of each delivery and settles it by the rules in this module's docstring.

    It also tracks the handlers in flight, so shutdown can let them finish.
    """

    def __init__(
        self,
        app: web.Application,
        handlers: EventHandlers,
        max_attempts: int,
        metrics: Metrics,
        tracing: Tracing | None = None,
    ) -> None:
        self._app = app
        self._handlers = handlers
        self._max_attempts = max_attempts
        self._metrics = metrics
        self._tracing = tracing
        self._in_flight: set[asyncio.Task[Any]] = set()

    async def handle(self, delivery: Delivery) -> None:
        """Handle one delivery; brokers call this in a task of its own per message."""
        # Casts to quoted types: subscripting a Callable alias at run time costs microseconds.
        task = cast("asyncio.Task[Any]", asyncio.current_task())
        self._in_flight.add(task)
        self._metrics.in_flight(1)
        started = time.perf_counter()
        # Each delivery runs in a task of its own, so this id stays with this one.
        CORRELATION_ID.set(plain(delivery.correlation_id) or plain(delivery.message_id) or new_id())
        original = delivery.headers.get(ORIGINAL_ROUTING_KEY)
        routing_key = original if isinstance(original, str) and original else delivery.routing_key
        attempt = _attempts(delivery.headers) + 1
        try:
            if self._tracing is None:
                pattern, outcome = await self._handle(delivery, routing_key, attempt)
            else:
                with self._tracing.processing(routing_key, delivery.headers, delivery.message_id):
                    pattern, outcome = await self._handle(delivery, routing_key, attempt)
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

    async def _handle(
        self, delivery: Delivery, routing_key: str, attempt: int
    ) -> tuple[str, Consumed]:
        """Settle ``delivery``; return its subscription's pattern (a bounded label for the
        metrics, unlike the routing key) and the outcome."""
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
            if subscription.wants_info:
                handler = cast("HandlerWithInfo[Any]", subscription.handler)
                await handler(self._app, event, info(delivery, routing_key, attempt))
            else:
                await cast("Handler[Any]", subscription.handler)(self._app, event)
        except Exception as exc:
            if self._tracing is not None:
                self._tracing.failed(exc)
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
            headers = {**delivery.headers, ATTEMPTS: attempt, ORIGINAL_ROUTING_KEY: routing_key}
            await self._copy(delivery.retry, "retry", headers)
            return subscription.pattern, "retried"
        await delivery.ack()
        return subscription.pattern, "acked"

    async def _dead_letter(
        self, delivery: Delivery, routing_key: str, attempt: int, exc: Exception
    ) -> None:
        reason = _reason(exc)
        if self._tracing is not None and isinstance(exc, ValidationError | LookupError):
            self._tracing.failed(exc)  # a failed handler was marked where it failed
        log.error(
            "dead-lettered a %s message after %d attempt(s): %s: %s",
            routing_key,
            attempt,
            type(exc).__name__,
            reason,
            exc_info=exc if not isinstance(exc, ValidationError | LookupError) else None,
        )
        headers = {
            **delivery.headers,
            ATTEMPTS: attempt,
            ORIGINAL_ROUTING_KEY: routing_key,
            ERROR_TYPE: type(exc).__name__,
            ERROR: reason,
        }
        await self._copy(delivery.dead_letter, "dead-letter", headers)

    async def _copy(
        self,
        send: Callable[[Headers], Awaitable[None]],
        copy: Literal["retry", "dead-letter"],
        headers: dict[str, Any],
    ) -> None:
        """Send the retry or dead-letter copy, which carries its own span's traceparent."""
        if self._tracing is None:
            await send(headers)
            return
        with self._tracing.copying(copy, headers):
            await send(headers)


def info(delivery: Delivery, routing_key: str, attempt: int) -> MessageInfo:
    """What a handler may ask about ``delivery``, which runs under its correlation id."""
    return MessageInfo(
        routing_key=routing_key,
        message_id=delivery.message_id,
        correlation_id=CORRELATION_ID.get() or "",
        headers=delivery.headers,
        attempt=attempt,
        redelivered=delivery.redelivered,
    )


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
