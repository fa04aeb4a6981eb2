"""Tracing in real processes. One trace across two services on RabbitMQ: a request to one, the
event it publishes handled (after a retry) by the other, whose own event comes back to the
first; each process writes its spans to a file (``tests/harness.py --spans``) and the test
follows the parent chain. And the standard ``OTEL_*`` variables alone make the service export
its spans over OTLP/HTTP, to a stand-in collector here."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from .conftest import AMQP_URL, eventually, wait_ready
from .test_main import free_port
from .test_process import ROOT, Service, launch, needs_rabbitmq

TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = "b7ad6b7169203331"


@pytest.fixture
async def pair() -> AsyncIterator[tuple[str, str, str]]:
    """Two service names on one exchange of their own; queues and exchange deleted after."""
    tag = uuid.uuid4().hex[:8]
    names = (f"test-{tag}-a", f"test-{tag}-b", f"test-{tag}.events")
    yield names
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()
        for name in names[:2]:
            for queue in (name, f"{name}.retry", f"{name}.dead-letter"):
                await channel.queue_delete(queue, if_unused=False, if_empty=False)
        await channel.exchange_delete(names[2], if_unused=False)


def read_spans(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def one(spans: list[dict[str, Any]], name: str, attempt_of: int = 0) -> dict[str, Any]:
    found = sorted((s for s in spans if s["name"] == name), key=lambda s: s["start_time"])
    assert found, f"no span {name!r} among {sorted({s['name'] for s in spans})}"
    return found[attempt_of]


async def stop(service: Service) -> None:
    service.process.send_signal(signal.SIGTERM)  # flushes the spans
    assert await service.wait(within=15) == 0, "\n".join(service.log[-20:])


@needs_rabbitmq
async def test_one_trace_crosses_two_processes_through_a_retry(
    pair: tuple[str, str, str], tmp_path: Path
) -> None:
    name_a, name_b, exchange = pair
    spans_a, spans_b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    arrived = "process test.relayed"
    a = await launch(name_a, AMQP_URL, "--spans", str(spans_a), exchange=exchange)
    b = await launch(name_b, AMQP_URL, "--spans", str(spans_b), exchange=exchange)
    try:
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                f"{a.url}/test/relay",
                json={"id": 42, "failures": 1},
                headers={"traceparent": f"00-{TRACE}-{PARENT}-01"},
            )
            assert response.status == 202

        async def both_relayed() -> bool:  # each relays, and each hears both relays
            return all(
                path.exists() and len([s for s in read_spans(path) if s["name"] == arrived]) >= 2
                for path in (spans_a, spans_b)
            )

        await eventually(both_relayed, within=20)
    finally:
        await stop(a)
        await stop(b)

    in_a, in_b = read_spans(spans_a), read_spans(spans_b)
    work = [s for s in in_a + in_b if not s["name"].startswith("GET /health")]  # readiness polls
    assert {s["context"]["trace_id"] for s in work} == {f"0x{TRACE}"}
    server = one(in_a, "POST /test/relay")
    publish = one(in_a, "publish test.relay")
    first = one(in_b, "process test.relay", 0)
    retry = one(in_b, f"publish {name_b}.retry")
    second = one(in_b, "process test.relay", 1)
    relay = one(in_b, "publish test.relayed")
    chain = [server, publish, first, retry, second, relay]
    assert server["parent_id"] == f"0x{PARENT}"
    for parent, child in itertools.pairwise(chain):
        assert child["parent_id"] == parent["context"]["span_id"], child["name"]
    # B's relay comes back to A: A's handler runs in B's trace, under B's publish.
    back = [s for s in in_a if s["name"] == "process test.relayed"]
    assert relay["context"]["span_id"] in {s["parent_id"] for s in back}
    assert first["status"]["status_code"] == "ERROR"
    assert {s["resource"]["attributes"]["service.name"] for s in in_b} == {name_b}


async def test_the_otel_variables_alone_export_spans_over_otlp_http(
    aiohttp_server: Callable[[web.Application], Awaitable[TestServer]],
) -> None:
    received: list[ExportTraceServiceRequest] = []

    async def collect(request: web.Request) -> web.Response:
        assert request.content_type == "application/x-protobuf"
        export = ExportTraceServiceRequest()
        export.ParseFromString(await request.read())
        received.append(export)
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    collector = web.Application()
    collector.router.add_post("/v1/traces", collect)
    server = await aiohttp_server(collector)
    port = free_port()
    environment = {
        **os.environ,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.port}",
        "OTEL_SERVICE_NAME": "traced-service",
    }
    # The sample service (not the example: tests of the runtime never lean on service/).
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.harness", "--amqp-url", "memory://",
        "--http-host", "127.0.0.1", "--http-port", str(port), env=environment, cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    await wait_ready(f"http://127.0.0.1:{port}", process)
    async with aiohttp.ClientSession() as session:
        response = await session.post(f"http://127.0.0.1:{port}/test/relay", json={"id": 1})
        assert response.status == 202
    process.send_signal(signal.SIGTERM)  # the spans still batched are exported at exit
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=20)
    assert process.returncode == 0, stderr.decode()[-3000:]

    spans = {
        span.name: resource
        for export in received
        for resource in export.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    }
    assert {"POST /test/relay", "publish test.relay", "process test.relay"} <= set(spans)
    attributes = {
        a.key: a.value.string_value for a in spans["POST /test/relay"].resource.attributes
    }
    assert attributes["service.name"] == "traced-service"
