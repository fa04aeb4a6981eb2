"""The service's events as it declares them: what it listens to, and what it publishes.

``dispatch.Dispatcher`` runs each handler by the rules in ``dispatch.py``; the publisher refuses
an event that was not declared; ``asyncapi.py`` documents both sides. Example use::

    events = EventHandlers()
    events.publishes("measurement.recorded", MeasurementRecorded, "A measurement was accepted")

    @events.subscribe("measurement.recorded", MeasurementRecorded)
    async def on_recorded(app: web.Application, event: MeasurementRecorded) -> None: ...

    @events.subscribe("sensor.#", SensorEvent)  # a handler may also ask about the message
    async def on_sensor(app: web.Application, event: SensorEvent, message: MessageInfo) -> None:
        log.info("attempt %d of %s", message.attempt, message.message_id)
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar, cast, overload

from aiohttp import web
from pydantic import BaseModel

from .correlation import CORRELATION_ID
from .topics import check_pattern, topic_matches

if TYPE_CHECKING:
    from .spans import Tracing

log = logging.getLogger(__name__)

Headers = Mapping[str, Any]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class MessageInfo:
    """What a handler that asks for it learns about the message it handles."""

    routing_key: str
    message_id: str | None
    correlation_id: str  # the one the handler runs under (``correlation.CORRELATION_ID``)
    headers: Headers
    attempt: int  # 1 for the first run, then one more for each retry
    redelivered: bool  # the broker delivered it before, and it was not settled


Handler = Callable[[web.Application, M], Awaitable[None]]
HandlerWithInfo = Callable[[web.Application, M, MessageInfo], Awaitable[None]]


class Register(Protocol[M]):
    """``subscribe``'s decorator: it takes either kind of handler and returns it as it is."""

    @overload
    def __call__(self, handler: Handler[M]) -> Handler[M]: ...
    @overload
    def __call__(self, handler: HandlerWithInfo[M]) -> HandlerWithInfo[M]: ...


class PublishError(Exception):
    """The broker did not confirm a message in time, or refused it."""


class UndeclaredEventError(LookupError):
    """The service published a routing key, or a model, it did not declare: a bug in its code."""


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


@dataclass(frozen=True)
class Subscription(Generic[M]):
    """A routing-key pattern, the payload model it carries and the function that handles it."""

    pattern: str
    model: type[M]
    handler: Handler[M] | HandlerWithInfo[M]
    wants_info: bool  # a handler that asks for nothing gets no MessageInfo built for it

    def matches(self, routing_key: str) -> bool:
        return topic_matches(self.pattern, routing_key)


@dataclass(frozen=True)
class Publication:
    """A routing key the service publishes, and the model its events have."""

    routing_key: str
    model: type[BaseModel]
    summary: str


FOUND_KEYS = 1024  # routing keys whose subscription ``EventHandlers.find`` remembers


class EventHandlers:
    """The service's event handlers and the events it publishes.

    Each subscription's pattern becomes a binding of the service queue. The app reads both when
    it is built; declaring after that raises ``RuntimeError``, since the queue would never be
    bound to the new pattern, nor the event documented.
    """

    def __init__(self) -> None:
        self.subscriptions: list[Subscription[Any]] = []
        self.publications: list[Publication] = []
        self._published: dict[str, Publication] = {}
        self._found: dict[str, Subscription[Any] | None] = {}
        self._frozen = False

    def freeze(self) -> None:
        """Refuse further declarations; ``create_app`` calls this."""
        self._frozen = True

    def publishes(self, routing_key: str, model: type[BaseModel], summary: str = "") -> None:
        """Declare that the service publishes ``model`` events with ``routing_key``.

        Publishing anything not declared raises ``UndeclaredEventError``. A key is declared
        whole, never as a pattern, so the document names each one and the metrics' labels stay
        bounded.
        """
        check_pattern(routing_key)
        if "*" in routing_key.split(".") or "#" in routing_key.split("."):
            raise ValueError(f"declare each routing key whole; {routing_key!r} is a pattern")
        if self._frozen:
            raise RuntimeError(
                f"{routing_key!r} was declared after the app was built; declare it at import "
                "time, before create_app"
            )
        if routing_key in self._published:
            raise ValueError(f"{routing_key!r} is declared twice")
        publication = Publication(routing_key, model, summary or summary_of(model))
        self.publications.append(publication)
        self._published[routing_key] = publication

    def check_publication(self, routing_key: str, event: BaseModel) -> None:
        """Raise ``UndeclaredEventError`` unless ``event`` may be published with ``routing_key``."""
        declared = self._published.get(routing_key)
        if declared is None:
            raise UndeclaredEventError(
                f"{routing_key!r} is not a declared publication; declare it with "
                f"events.publishes({routing_key!r}, {type(event).__name__}) next to the "
                "event handlers"
            )
        if not isinstance(event, declared.model):
            raise UndeclaredEventError(
                f"{routing_key!r} is declared with {declared.model.__name__}, not "
                f"{type(event).__name__}"
            )

    def subscribe(self, pattern: str, model: type[M]) -> Register[M]:
        """Register the decorated function for messages whose routing key matches ``pattern``.

        ``*`` stands for one dot-separated word and ``#`` for zero or more, as in a topic
        exchange. A message goes to the first registered handler that matches. A handler with
        a third parameter gets a ``MessageInfo`` in it.
        """
        check_pattern(pattern)

        def register(handler: Any) -> Any:
            if self._frozen:
                raise RuntimeError(
                    f"{handler.__name__} subscribed to {pattern!r} after the app was built, so "
                    "no message would reach it; subscribe at import time, before create_app"
                )
            wants_info = len(inspect.signature(handler).parameters) >= 3
            self.subscriptions.append(Subscription(pattern, model, handler, wants_info))
            return handler

        return cast(Register[M], register)

    @property
    def patterns(self) -> list[str]:
        return list(dict.fromkeys(s.pattern for s in self.subscriptions))

    def find(self, routing_key: str) -> Subscription[Any] | None:
        """The first subscription whose pattern matches ``routing_key``. Once frozen, the
        answer for each of the first ``FOUND_KEYS`` keys is kept: matching every pattern again
        cost a sixth of a delivery's time in the dispatcher, and keys that come off the wire
        are not bounded, so neither may the memory be."""
        if routing_key in self._found:
            return self._found[routing_key]
        found = next((s for s in self.subscriptions if s.matches(routing_key)), None)
        if self._frozen and len(self._found) < FOUND_KEYS:
            self._found[routing_key] = found
        return found


class DeclaredPublisher:
    """The service's ``Publisher``: refuses undeclared events, then hands them to the broker,
    in a span of their own while tracing is on."""

    def __init__(
        self, broker: Publisher, events: EventHandlers, tracing: Tracing | None = None
    ) -> None:
        self._broker = broker
        self._events = events
        self._tracing = tracing

    def publish(
        self,
        routing_key: str,
        event: BaseModel,
        *,
        headers: Headers | None = None,
        correlation_id: str | None = None,
    ) -> Coroutine[Any, Any, None]:
        # A plain function returning the broker's coroutine: no extra frame per publish.
        self._events.check_publication(routing_key, event)
        if self._tracing is not None:
            return self._traced(self._tracing, routing_key, event, headers, correlation_id)
        return self._broker.publish(
            routing_key, event, headers=headers, correlation_id=correlation_id
        )

    async def _traced(
        self,
        tracing: Tracing,
        routing_key: str,
        event: BaseModel,
        headers: Headers | None,
        correlation_id: str | None,
    ) -> None:
        carried = dict(headers or {})  # gets the traceparent; the caller's stays as it was
        with tracing.publishing(routing_key, carried, correlation_id or CORRELATION_ID.get()):
            await self._broker.publish(
                routing_key, event, headers=carried, correlation_id=correlation_id
            )


def summary_of(thing: object) -> str:
    """The first line of ``thing``'s docstring, or "": what the API documents say of it."""
    return (getattr(thing, "__doc__", None) or "").strip().split("\n")[0]


def validate(model: type[M], raw: bytes) -> M:
    """``raw`` JSON as ``model``, strictly: each value must have the JSON type its schema says.

    Pydantic's default (lax) mode takes ``"12"`` or ``false`` for a number, so a document would
    promise one thing and the service accept another. A model that wants lax fields sets
    ``strict`` in its ``model_config`` itself (``strict=True`` plus ``Field(strict=False)``
    on those fields).
    """
    strict = None if "strict" in model.model_config else True
    return model.model_validate_json(raw, strict=strict)
