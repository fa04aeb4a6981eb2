"""The service's OpenTelemetry spans, following the HTTP and messaging semantic conventions;
imported only while tracing is on (``tracing.py`` decides). Example use::

    tracing = Tracing(provider(["console"], "my-service", "1.0.0"), settings)
    with tracing.publishing("measurement.recorded", headers, correlation_id):
        ...  # publish; headers now carry the span's W3C traceparent

One trace follows a piece of work across services: a SERVER span per HTTP request (child of
the request's ``traceparent``, if any), a PRODUCER span per publish, whose context travels in
the message's ``traceparent`` header, a CONSUMER span per delivery handled (child of that
producer), and PRODUCER spans for the retry and dead-letter copies, whose context the copy
carries, so the next attempt's span is a child of the failed one's. A malformed
``traceparent``, or a header of another type, is ignored: the span starts a new trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

from aiohttp import web
from opentelemetry import trace
from opentelemetry.propagators.textmap import Getter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from .amqp.topology import QueueNames
from .correlation import LogField
from .messaging import Headers
from .problems import Handler
from .settings import RuntimeSettings

SCOPE = __name__.rpartition(".")[0]  # the runtime, as the instrumentation scope


class HeaderGetter(Getter[Headers]):
    """Reads AMQP headers for the propagator; a value that is not text is not there."""

    def get(self, carrier: Headers, key: str) -> list[str] | None:
        value = carrier.get(key)
        return [value] if isinstance(value, str) else None

    def keys(self, carrier: Headers) -> list[str]:
        return list(carrier)


def provider(exporters: list[str], service_name: str, version: str) -> TracerProvider:
    """A tracer provider exporting to ``exporters`` (``otlp``, ``console``) in batches, as the
    service ``service_name`` unless ``OTEL_SERVICE_NAME`` or the resource attributes name it."""
    resource = Resource.create({"service.version": version})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": service_name}))
    tracer_provider = TracerProvider(resource=resource)
    for name in exporters:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            exporter = ConsoleSpanExporter()
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    return tracer_provider


class Tracing:
    """Makes the runtime's spans with ``tracer_provider``; ``close`` flushes them at exit."""

    def __init__(self, tracer_provider: TracerProvider, settings: RuntimeSettings) -> None:
        self.provider = tracer_provider
        self._tracer = tracer_provider.get_tracer(SCOPE)
        self._propagator = TraceContextTextMapPropagator()
        self._getter = HeaderGetter()
        self._system = "memory" if settings.in_process_broker else "rabbitmq"
        self._exchange = settings.exchange
        self._queues = QueueNames.of(settings.service_name)
        LogField.trace_ids = current_ids

    def serving(self, handler: Handler, route: str | None) -> Handler:
        """``handler`` of the route template ``route`` (None: no route matched) in a SERVER
        span named after the template, never the path; ``front.py`` wraps every route so."""
        tracer, propagator = self._tracer, self._propagator
        name = f" {route}" if route else ""

        async def traced(request: web.Request) -> web.StreamResponse:
            attributes = {
                "http.request.method": request.method,
                "url.path": request.path,
                "url.scheme": request.scheme,
                "http.route": route or "",
                "user_agent.original": request.headers.get("User-Agent", ""),
            }
            with tracer.start_as_current_span(
                f"{request.method}{name}",
                context=propagator.extract(request.headers),
                kind=SpanKind.SERVER,
                attributes=attributes,
            ) as span:
                try:
                    response = await handler(request)
                except web.HTTPException as exc:  # a redirect
                    span.set_attribute("http.response.status_code", exc.status)
                    raise
                span.set_attribute("http.response.status_code", response.status)
                if response.status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                return response

        return traced

    @contextmanager
    def publishing(
        self, routing_key: str, headers: MutableMapping[str, Any], correlation_id: str | None
    ) -> Iterator[None]:
        """A PRODUCER span around one publish; ``headers`` get its ``traceparent``."""
        attributes = {
            **self._messaging("publish", "send", self._exchange, routing_key),
            "messaging.message.conversation_id": correlation_id or "",
        }
        with self._tracer.start_as_current_span(
            f"publish {routing_key}", kind=SpanKind.PRODUCER, attributes=attributes
        ):
            self._propagator.inject(headers)
            yield

    @contextmanager
    def copying(
        self, copy: Literal["retry", "dead-letter"], headers: MutableMapping[str, Any]
    ) -> Iterator[None]:
        """A PRODUCER span around the retry or dead-letter copy of the message in hand."""
        queue = self._queues.retry if copy == "retry" else self._queues.dead_letter
        with self._tracer.start_as_current_span(
            f"publish {queue}",
            kind=SpanKind.PRODUCER,
            attributes=self._messaging("publish", "send", "", queue),
        ):
            self._propagator.inject(headers)
            yield

    @contextmanager
    def processing(
        self, routing_key: str, headers: Headers, message_id: str | None
    ) -> Iterator[None]:
        """A CONSUMER span around the handling of one delivery, child of its publish."""
        attributes = {
            **self._messaging("process", "process", self._queues.service, routing_key),
            "messaging.message.id": message_id or "",
        }
        with self._tracer.start_as_current_span(
            f"process {routing_key}",
            context=self._propagator.extract(headers, getter=self._getter),
            kind=SpanKind.CONSUMER,
            attributes=attributes,
        ):
            yield

    def failed(self, exc: BaseException) -> None:
        """Mark the current span as failed by ``exc``, which the runtime has dealt with."""
        span = trace.get_current_span()
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"[:200]))

    async def close(self, app: web.Application) -> None:
        """``on_cleanup`` hook: export the spans still buffered (in a thread: it blocks)."""
        await asyncio.to_thread(self.provider.shutdown)

    def _messaging(
        self, name: str, kind: str, destination: str, routing_key: str
    ) -> dict[str, str]:
        return {
            "messaging.system": self._system,
            "messaging.operation.name": name,
            "messaging.operation.type": kind,
            "messaging.destination.name": destination,
            "messaging.rabbitmq.destination.routing_key": routing_key,
        }


def current_ids() -> tuple[str, str] | None:
    """The trace and span id of the current span, in hex, or None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"
