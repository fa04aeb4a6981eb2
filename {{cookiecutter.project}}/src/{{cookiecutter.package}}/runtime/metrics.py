"""Prometheus metrics of the service, served at ``GET /metrics`` by the same app.

Every name starts with the package's name as namespace, and every label has few values: a
route template (never the raw path), a subscription pattern, a routing key the code publishes,
a task's name, an outcome. Example use::

    metrics = Metrics(enabled=True)
    metrics.consumed("measurement.recorded", "acked", 0.002)
    metrics.scrape()  # the text a Prometheus server reads

The runtime records, prefixed ``{{ cookiecutter.package }}_``:

- ``http_requests_total{method,route,status}``, ``http_request_duration_seconds{method,route}``;
- ``messages_consumed_total{routing_key,outcome}`` (acked, retried, dead_lettered, invalid),
  ``message_handler_duration_seconds{routing_key}``, ``messages_in_flight``;
- ``messages_published_total{routing_key,outcome}`` (confirmed, failed, unroutable),
  ``publish_confirm_duration_seconds{routing_key}``;
- ``task_runs_total``, ``task_failures_total``, ``task_restarts_total`` and
  ``task_last_success_timestamp_seconds``, each ``{task}``;
- ``broker_connected`` (1 or 0) and ``broker_reconnects_total``.

With ``METRICS_ENABLED=false`` there is no route, and recording returns at once.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from functools import partial
from typing import Literal, Protocol

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

NAMESPACE = "{{ cookiecutter.package }}"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# An HTTP request that matched no route: one label value for every unknown path.
UNMATCHED = "unmatched"

Consumed = Literal["acked", "retried", "dead_lettered", "invalid"]
Published = Literal["confirmed", "failed", "unroutable"]


class TaskNumbers(Protocol):
    """What the metrics read of one task, at each scrape."""

    runs: int
    failures_total: int
    restarts: int
    last_success: float | None


class Metrics:
    """The service's metrics, in a registry of its own (tests build many apps in a process)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.registry = CollectorRegistry()
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []
        self._series: dict[tuple[object, ...], tuple[Counter, Histogram]] = {}
        counter = partial(Counter, namespace=NAMESPACE, registry=self.registry)
        histogram = partial(Histogram, namespace=NAMESPACE, registry=self.registry)
        gauge = partial(Gauge, namespace=NAMESPACE, registry=self.registry)
        self._requests = counter(
            "http_requests", "HTTP requests answered", ["method", "route", "status"]
        )
        self._request_seconds = histogram(
            "http_request_duration_seconds", "Time to answer", ["method", "route"]
        )
        self._consumed = counter(
            "messages_consumed", "Deliveries settled", ["routing_key", "outcome"]
        )
        self._handler_seconds = histogram(
            "message_handler_duration_seconds", "Time from delivery to settlement", ["routing_key"]
        )
        self._in_flight = gauge("messages_in_flight", "Deliveries being handled")
        self._published = counter(
            "messages_published", "Events published", ["routing_key", "outcome"]
        )
        self._confirm_seconds = histogram(
            "publish_confirm_duration_seconds", "Time to the broker's confirm", ["routing_key"]
        )
        self._connected = gauge("broker_connected", "1 while the broker link is up")
        self._reconnects = counter(
            "broker_reconnects", "Times the broker link came back after a loss"
        )

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        if self.enabled:
            count, timing = self._pair(
                self._requests, self._request_seconds, (method, route), status
            )
            count.inc()
            timing.observe(seconds)

    def consumed(self, routing_key: str, outcome: Consumed, seconds: float) -> None:
        if self.enabled:
            count, timing = self._pair(
                self._consumed, self._handler_seconds, (routing_key,), outcome
            )
            count.inc()
            timing.observe(seconds)

    def in_flight(self, change: int) -> None:
        if self.enabled:
            self._in_flight.inc(change)

    def published(self, routing_key: str, outcome: Published, seconds: float) -> None:
        if self.enabled:
            count, timing = self._pair(
                self._published, self._confirm_seconds, (routing_key,), outcome
            )
            count.inc()
            if outcome != "failed":  # no confirm came
                timing.observe(seconds)

    def _pair(
        self, counter: Counter, histogram: Histogram, labels: tuple[str, ...], last: str | int
    ) -> tuple[Counter, Histogram]:
        """The counter's series for ``labels`` and ``last``, and the histogram's for ``labels``,
        looked up once: ``labels()`` costs more than ``inc()`` and ``observe()`` together."""
        key = (id(counter), *labels, last)
        if (pair := self._series.get(key)) is None:
            pair = self._series[key] = (
                counter.labels(*labels, str(last)),
                histogram.labels(*labels),
            )
        return pair

    def reconnected(self) -> None:
        if self.enabled:
            self._reconnects.inc()

    def connected(self, up: bool) -> None:
        if self.enabled:
            self._connected.set(1 if up else 0)

    def before_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` before each scrape, for a value read from the runtime's state."""
        self._before_scrape.append(refresh)

    def watch_tasks(self, read: Callable[[], Mapping[str, TaskNumbers]]) -> None:
        """Report the tasks ``read`` returns at each scrape: the supervisor counts anyway."""
        if self.enabled:
            self.registry.register(_TaskCollector(read))

    async def scrape(self) -> bytes:
        for refresh in self._before_scrape:
            await refresh()
        return generate_latest(self.registry)


class _TaskCollector(Collector):
    def __init__(self, read: Callable[[], Mapping[str, TaskNumbers]]) -> None:
        self._read = read

    def collect(self) -> Iterator[Metric]:
        prefix = f"{NAMESPACE}_task_"
        runs = CounterMetricFamily(prefix + "runs", "Task runs started", labels=["task"])
        failures = CounterMetricFamily(prefix + "failures", "Task failures", labels=["task"])
        restarts = CounterMetricFamily(prefix + "restarts", "Task restarts", labels=["task"])
        success = GaugeMetricFamily(
            prefix + "last_success_timestamp_seconds",
            "Unix time of the task's last success",
            labels=["task"],
        )
        for name, task in self._read().items():
            runs.add_metric([name], task.runs)
            failures.add_metric([name], task.failures_total)
            restarts.add_metric([name], task.restarts)
            if task.last_success is not None:
                success.add_metric([name], task.last_success)
        yield from (runs, failures, restarts, success)


METRICS = web.AppKey("metrics", Metrics)


def setup(app: web.Application, enabled: bool) -> None:
    """Give the app its metrics and, if they are on, ``GET /metrics`` (not in OpenAPI)."""
    metrics = app[METRICS] = Metrics(enabled)
    if not enabled:
        return

    async def serve(request: web.Request) -> web.Response:
        body = await metrics.scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    app.router.add_get("/metrics", serve, name="metrics")


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count each answered request by route template, method and status, with its duration.

    ``create_app`` leaves it out when metrics are off, so they cost nothing then.
    """
    metrics = request.app[METRICS]
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else UNMATCHED
        metrics.request(request.method, route, status, time.perf_counter() - started)
