"""Tracing: off unless the OTEL_* variables ask for it; when on, one trace runs from a request
through publish, handler, retry, dead letter and the handler's own publish, on either broker;
a malformed ``traceparent`` starts a new trace instead of failing anything."""

from __future__ import annotations

import itertools
import logging
import subprocess
import sys
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from {{ cookiecutter.package }}.runtime.broker import PUBLISHER, StartupError
from {{ cookiecutter.package }}.runtime.correlation import LogField
from {{ cookiecutter.package }}.runtime.tracing import exporters

from .conftest import Client, RawBroker, eventually, make_settings
from .sample import READINGS, Job, sample_app

PARENT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # exports as each span ends
    return provider, exporter


def by_name(spans: tuple[ReadableSpan, ...], name: str) -> list[ReadableSpan]:
    return sorted((s for s in spans if s.name == name), key=lambda s: s.start_time or 0)


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def test_tracing_is_off_unless_the_environment_asks() -> None:
    assert exporters({}) == []
    assert exporters({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}) == ["otlp"]
    assert exporters({"OTEL_TRACES_EXPORTER": "console,otlp"}) == ["console", "otlp"]
    assert exporters({"OTEL_TRACES_EXPORTER": "none"}) == []
    disabled = {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}
    assert exporters(disabled) == []
    with pytest.raises(StartupError, match="OTEL_TRACES_EXPORTER=zipkin is not an exporter"):
        exporters({"OTEL_TRACES_EXPORTER": "zipkin"})
    with pytest.raises(StartupError, match="'grpc' is not installed"):
        exporters({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})


def test_with_tracing_off_opentelemetry_is_not_even_imported() -> None:
    # Whatever the service's own code imports, building the app adds nothing of OpenTelemetry.
    code = (
        "import sys\n"
        "from pydantic import SecretStr\n"
        "from {{ cookiecutter.package }}.app import create_app\n"
        "from {{ cookiecutter.package }}.settings import Settings\n"
        "before = {m for m in sys.modules if m.startswith('opentelemetry')}\n"
        "create_app(Settings(amqp_url=SecretStr('memory://')))\n"
        "print(sorted({m for m in sys.modules if m.startswith('opentelemetry')} - before))\n"
        "print('runtime' if any(m.endswith('runtime.spans') for m in sys.modules) else '')\n"
    )
    env = {"PATH": "/usr/bin:/bin"}  # no OTEL_* variable
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[:2] == ["[]", ""]


async def test_one_trace_runs_from_the_request_through_a_retry_to_the_next_handler(
    broker_url: str,
    start: Callable[[web.Application], Awaitable[Client]],
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    settings = make_settings(amqp_url=broker_url)
    client = await start(sample_app(settings, tracer_provider=provider))
    traceparent = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"
    response = await client.post(
        "/test/relay", json={"id": 7, "failures": 1}, headers={"traceparent": traceparent}
    )
    assert response.status == 202

    async def relayed() -> bool:  # the last span ends after its handler returned
        return bool(by_name(exporter.get_finished_spans(), "process test.relayed"))

    await eventually(relayed)
    assert client.app[READINGS].relayed == [7]
    finished = exporter.get_finished_spans()
    [server] = by_name(finished, "POST /test/relay")
    [publish] = by_name(finished, "publish test.relay")
    first, second = by_name(finished, "process test.relay")
    [retry] = by_name(finished, f"publish {settings.service_name}.retry")
    [relay] = by_name(finished, "publish test.relayed")
    [arrived] = by_name(finished, "process test.relayed")

    assert {f"{s.context.trace_id:032x}" for s in finished} == {PARENT_TRACE}
    assert parent_of(server) == int(PARENT_SPAN, 16)
    chain = [server, publish, first, retry, second, relay, arrived]
    for parent, child in itertools.pairwise(chain):
        assert parent_of(child) == parent.context.span_id, f"{child.name} after {parent.name}"
    assert [s.kind for s in chain] == [
        SpanKind.SERVER, SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.PRODUCER,
        SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.CONSUMER,
    ]  # fmt: skip
    assert first.status.status_code is StatusCode.ERROR
    assert second.status.status_code is StatusCode.UNSET
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/test/relay"
    assert server.attributes["http.response.status_code"] == 202
    assert publish.attributes is not None
    assert publish.attributes["messaging.destination.name"] == settings.exchange
    assert publish.attributes["messaging.rabbitmq.destination.routing_key"] == "test.relay"


async def test_a_dead_lettered_message_ends_its_trace_with_the_dead_letter_copy(
    broker_url: str,
    start: Callable[[web.Application], Awaitable[Client]],
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    settings = make_settings(amqp_url=broker_url, max_attempts=2)
    client = await start(sample_app(settings, tracer_provider=provider))
    await client.app[PUBLISHER].publish("test.broken", Job(id=1))
    dead = f"publish {settings.service_name}.dead-letter"

    async def dead_lettered() -> bool:  # the second attempt's span ends after its copy
        return len(by_name(exporter.get_finished_spans(), "process test.broken")) == 2

    await eventually(dead_lettered)
    finished = exporter.get_finished_spans()
    [publish] = by_name(finished, "publish test.broken")
    first, second = by_name(finished, "process test.broken")
    [retry] = by_name(finished, f"publish {settings.service_name}.retry")
    [copy] = by_name(finished, dead)
    chain = [publish, first, retry, second, copy]
    for parent, child in itertools.pairwise(chain):
        assert parent_of(child) == parent.context.span_id, f"{child.name} after {parent.name}"
    assert publish.parent is None  # published outside any request: a trace of its own
    assert second.status.status_code is StatusCode.ERROR
    assert any(event.name == "exception" for event in second.events)


@pytest.mark.parametrize("traceparent", ["garbage", f"00-{'0' * 32}-{PARENT_SPAN}-01", "é" * 60])
async def test_a_malformed_traceparent_starts_a_new_trace(
    start: Callable[[web.Application], Awaitable[Client]],
    spans: tuple[TracerProvider, InMemorySpanExporter],
    traceparent: str,
) -> None:
    provider, exporter = spans
    client = await start(sample_app(make_settings(), tracer_provider=provider))
    response = await client.post(
        "/test/relay", json={"id": 1}, headers={"traceparent": traceparent}
    )
    assert response.status == 202
    raw = RawBroker(client.app)
    await raw.publish("test.relayed", b'{"id": 2}', headers={"traceparent": traceparent})
    await raw.publish("test.relayed", b'{"id": 3}', headers={"traceparent": 12345})

    async def handled() -> bool:
        return len(by_name(exporter.get_finished_spans(), "process test.relayed")) == 3

    await eventually(handled)
    assert sorted(client.app[READINGS].relayed) == [1, 2, 3]
    finished = exporter.get_finished_spans()
    [server] = by_name(finished, "POST /test/relay")
    assert server.parent is None
    assert server.context.trace_id != 0
    roots = [s for s in by_name(finished, "process test.relayed") if s.parent is None]
    assert len(roots) == 2  # the two raw messages; the relay's own has its publish as parent


async def test_log_lines_written_in_a_span_name_its_trace(
    start: Callable[[web.Application], Awaitable[Client]],
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = spans
    await start(sample_app(make_settings(), tracer_provider=provider))  # installs the ids
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "inside", None, None)
    with provider.get_tracer("test").start_as_current_span("work") as span:
        LogField().filter(record)
    context = span.get_span_context()
    assert getattr(record, "trace_id", None) == f"{context.trace_id:032x}"
    assert getattr(record, "span_id", None) == f"{context.span_id:016x}"
    outside = logging.LogRecord("t", logging.INFO, __file__, 1, "outside", None, None)
    LogField().filter(outside)
    assert not hasattr(outside, "trace_id")


async def test_every_answer_has_a_server_span_named_by_its_route_never_its_path(
    start: Callable[[web.Application], Awaitable[Client]],
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    client = await start(sample_app(make_settings(), tracer_provider=provider))
    assert (await client.get("/no/such/path")).status == 404
    assert (await client.delete("/test/readings/t1")).status == 405
    assert (await client.get("/test/readings/t1")).status == 404  # a route, no such reading
    finished = exporter.get_finished_spans()
    unmatched = [
        dict(s.attributes or {}) for s in by_name(finished, "GET") + by_name(finished, "DELETE")
    ]
    assert [attributes["http.response.status_code"] for attributes in unmatched] == [404, 405]
    assert {attributes["http.route"] for attributes in unmatched} == {""}
    [routed] = by_name(finished, "GET /test/readings/{key}")
    assert dict(routed.attributes or {})["http.response.status_code"] == 404
    assert dict(routed.attributes or {})["url.path"] == "/test/readings/t1"
