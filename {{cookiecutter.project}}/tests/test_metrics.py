"""Prometheus metrics at ``GET /metrics``: what the runtime counts, through each broker, on the
sample service; labels that do not grow with traffic; and a setting that turns it all off."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from uuid import uuid4

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from {{ cookiecutter.package }}.runtime import front
from {{ cookiecutter.package }}.runtime.broker import BROKER, PUBLISHER
from {{ cookiecutter.package }}.runtime.messaging import PublishError
from {{ cookiecutter.package }}.runtime.metrics import METRICS
from {{ cookiecutter.package }}.runtime.tasks import Tasks

from .conftest import Client, RawBroker, eventually, make_settings
from .sample import Job, Reading, sample_app

NS = "{{ cookiecutter.package }}_"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: Client) -> Samples:
    """Every sample of ``GET /metrics``, by name and labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(await response.text())
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((NS + name, frozenset(labels.items())), 0.0)


async def test_a_scrape_counts_requests_deliveries_publishes_tasks_and_the_link(
    broker_url: str, start: Callable[[web.Application], Awaitable[Client]]
) -> None:
    jobs = Tasks()

    @jobs.periodic(every=0.01)
    async def tick(app: web.Application) -> None:
        pass

    @jobs.periodic(every=0.01)
    async def crash(app: web.Application) -> None:
        raise RuntimeError("always")

    client = await start(sample_app(make_settings(amqp_url=broker_url, max_attempts=2), jobs))
    for value_ in (1, 2):
        response = await client.post("/test/readings", json={"key": "k", "value": value_})
        assert response.status == 202
    assert (await client.post("/test/readings", json={"key": "k"})).status == 422
    raw = RawBroker(client.app)
    await raw.publish("test.reading", b"not json")
    await raw.publish("test.broken", b'{"id": 1}')
    await client.app[PUBLISHER].publish("nobody.listens", Job(id=1))

    async def settled() -> bool:
        samples = await scrape(client)
        consumed = "messages_consumed_total"
        return (
            value(samples, consumed, routing_key="test.reading", outcome="acked") == 2
            and value(samples, consumed, routing_key="test.reading", outcome="invalid") == 1
            and value(samples, consumed, routing_key="test.broken", outcome="retried") == 1
            and value(samples, consumed, routing_key="test.broken", outcome="dead_lettered") == 1
        )

    await eventually(settled)
    samples = await scrape(client)
    post = {"method": "POST", "route": "/test/readings"}
    assert value(samples, "http_requests_total", status="202", **post) == 2
    assert value(samples, "http_requests_total", status="422", **post) == 1
    assert value(samples, "http_request_duration_seconds_count", **post) == 3
    assert value(samples, "message_handler_duration_seconds_count", routing_key="test.reading") == 3
    assert value(samples, "messages_in_flight") == 0
    published = "messages_published_total"
    assert value(samples, published, routing_key="test.reading", outcome="confirmed") == 2
    assert value(samples, published, routing_key="nobody.listens", outcome="unroutable") == 1
    confirms = "publish_confirm_duration_seconds_count"
    assert value(samples, confirms, routing_key="test.reading") == 2
    assert value(samples, "task_runs_total", task="tick") >= 1
    assert value(samples, "task_failures_total", task="crash") >= 1
    assert value(samples, "task_restarts_total", task="crash") >= 1
    assert time.time() - value(samples, "task_last_success_timestamp_seconds", task="tick") < 5
    assert value(samples, "broker_connected") == 1
    assert value(samples, "broker_reconnects_total") == 0

    await client.app[BROKER].close()
    with pytest.raises(PublishError):
        await client.app[PUBLISHER].publish("test.reading", Reading(id=uuid4(), key="k", value=1))
    samples = await scrape(client)
    assert value(samples, published, routing_key="test.reading", outcome="failed") == 1
    assert value(samples, "broker_connected") == 0


async def test_unknown_paths_add_no_series(sample_memory_client: Client) -> None:
    client = sample_memory_client
    assert (await client.get("/no/such/path")).status == 404
    await scrape(client)  # a scrape is a request too: its own series exist from here on
    before = await scrape(client)
    for number in range(50):
        assert (await client.get(f"/no/such/path/{number}")).status == 404
    after = await scrape(client)
    assert after.keys() == before.keys()
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, "http_requests_total", **unmatched) == 51
    assert not [labels for _, labels in after if ("route", "/no/such/path/7") in labels]


async def test_a_redirect_is_counted_and_names_its_request(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    app = sample_app(make_settings())

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/test/readings/k")  # not an error: no problem JSON

    front.add_route(app, "GET", "/old", moved)
    client = await start(app)
    response = await client.get("/old", allow_redirects=False, headers={"X-Request-ID": "r-1"})
    assert response.status == 302
    assert response.headers["Location"] == "/test/readings/k"
    assert response.headers["X-Request-ID"] == "r-1"
    samples = await scrape(client)
    assert value(samples, "http_requests_total", method="GET", route="/old", status="302") == 1


async def test_metrics_can_be_turned_off(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    client = await start(sample_app(make_settings(metrics_enabled=False)))
    assert (await client.post("/test/readings", json={"key": "k", "value": 1})).status == 202
    assert (await client.get("/metrics")).status == 404
    await asyncio.sleep(0.05)
    text = (await client.app[METRICS].scrape()).decode()
    assert "_total{" not in text  # nothing recorded
