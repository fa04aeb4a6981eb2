"""Prometheus metrics of the service, served at ``GET /metrics`` by the same app.

Every name starts with the package's name as namespace, and every label has few values: a
route template (never the raw path), a subscription pattern, a routing key the code publishes,
a task's name, an outcome. Example use::

    metrics = Metrics(enabled=True)
    metrics.answered("/sensors/{sensor}", "GET", 200, started)  # front.py calls it
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

With ``METRICS_ENABLED=false`` there is no route, and recording returns at once. The numbers
are plain values the event loop owns, written out in Prometheus' text format at each scrape:
no client library, and no lock on the hot paths.
"""

from __future__ import annotations

import bisect
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Literal, Protocol

from aiohttp import web

from . import front

NAMESPACE = "{{ cookiecutter.package }}"
# Prometheus' text format, which every Prometheus server reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Prometheus' default buckets, in seconds; the last one, +Inf, is implied.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)

Timing = tuple[list[int], list[float]]  # the count in each bucket, and the sum
Series = tuple[list[float], Timing]  # a counter's cell and a histogram's series
Consumed = Literal["acked", "retried", "dead_lettered", "invalid"]
Published = Literal["confirmed", "failed", "unroutable"]


class TaskNumbers(Protocol):
    """What the metrics read of one task, at each scrape."""

    runs: int
    failures_total: int
    restarts: int
    last_success: float | None


class Counts:
    """A counter family as plain numbers by label values. Only the event loop writes them, so
    they need no locks, which cost more than the counting itself."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = f"{NAMESPACE}_{name}_total", help_text, labels
        self.values: dict[tuple[str, ...], list[float]] = {}

    def cell(self, key: tuple[str, ...]) -> list[float]:
        """The one-item list that holds the count for ``key``; callers may keep it."""
        cell = self.values.get(key)
        if cell is None:
            cell = self.values[key] = [0.0]
        return cell

    def lines(self) -> Iterator[str]:
        yield from _header(self.name, self.help, "counter")
        for key, cell in self.values.items():
            yield f"{self.name}{_labels(self.labels, key)} {_number(cell[0])}"


class Timings:
    """A histogram family as plain numbers: per label values, a count per bucket and a sum."""

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = f"{NAMESPACE}_{name}", help_text, labels
        self.values: dict[tuple[str, ...], Timing] = {}

    def series(self, key: tuple[str, ...]) -> Timing:
        """The bucket counts and sum for ``key``; callers may keep them."""
        timing = self.values.get(key)
        if timing is None:
            timing = self.values[key] = ([0] * (len(BUCKETS) + 1), [0.0])
        return timing

    def lines(self) -> Iterator[str]:
        yield from _header(self.name, self.help, "histogram")
        bounds = [*(_number(bound) for bound in BUCKETS), "+Inf"]
        for key, (counts, total) in self.values.items():
            running = 0
            for bound, count in zip(bounds, counts, strict=True):
                running += count
                le = _labels((*self.labels, "le"), (*key, bound))
                yield f"{self.name}_bucket{le} {_number(running)}"
            labels = _labels(self.labels, key)
            yield f"{self.name}_count{labels} {_number(running)}"
            yield f"{self.name}_sum{labels} {_number(total[0])}"


class Metrics:
    """The service's metrics, each app its own (tests build many apps in a process)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._tasks: Callable[[], Mapping[str, TaskNumbers]] | None = None
        self._before_scrape: list[Callable[[], Awaitable[None]]] = []
        self._requests = Counts(
            "http_requests", "HTTP requests answered", ("method", "route", "status")
        )
        self._request_seconds = Timings(
            "http_request_duration_seconds", "Time to answer", ("method", "route")
        )
        self._consumed = Counts(
            "messages_consumed", "Deliveries settled", ("routing_key", "outcome")
        )
        self._handler_seconds = Timings(
            "message_handler_duration_seconds", "Time from delivery to settlement", ("routing_key",)
        )
        self._published = Counts(
            "messages_published", "Events published", ("routing_key", "outcome")
        )
        self._confirm_seconds = Timings(
            "publish_confirm_duration_seconds", "Time to the broker's confirm", ("routing_key",)
        )
        self._reconnects = Counts(
            "broker_reconnects", "Times the broker link came back after a loss", ()
        )
        self._in_flight = 0
        self._connected = 0
        # What the hot paths record into, found with one lookup of a key they already have.
        self._http: dict[tuple[str, str, int], Series] = {}
        self._deliveries: dict[tuple[str, str], Series] = {}

    def answered(self, route: str, method: str, status: int, started: float) -> None:
        """Count a request to the route template ``route`` answered with ``status``, and its
        duration since ``started`` (``time.perf_counter``). Only called while metrics are on."""
        key = (route, method, status)
        series = self._http.get(key)
        if series is None:
            series = self._http[key] = (
                self._requests.cell((method, route, str(status))),
                self._request_seconds.series((method, route)),
            )
        series[0][0] += 1
        _observe(series[1], time.perf_counter() - started)

    def consumed(self, routing_key: str, outcome: Consumed, seconds: float) -> None:
        if self.enabled:
            series = self._deliveries.get((routing_key, outcome))
            if series is None:
                series = self._deliveries[routing_key, outcome] = (
                    self._consumed.cell((routing_key, outcome)),
                    self._handler_seconds.series((routing_key,)),
                )
            series[0][0] += 1
            _observe(series[1], seconds)

    def in_flight(self, change: int) -> None:
        self._in_flight += change  # cheaper than asking whether metrics are on

    def published(self, routing_key: str, outcome: Published, seconds: float) -> None:
        if self.enabled:
            self._published.cell((routing_key, outcome))[0] += 1
            if outcome != "failed":  # no confirm came
                _observe(self._confirm_seconds.series((routing_key,)), seconds)

    def reconnected(self) -> None:
        self._reconnects.cell(())[0] += 1

    def connected(self, up: bool) -> None:
        self._connected = 1 if up else 0

    def before_scrape(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Run ``refresh`` before each scrape, for a value read from the runtime's state."""
        self._before_scrape.append(refresh)

    def watch_tasks(self, read: Callable[[], Mapping[str, TaskNumbers]]) -> None:
        """Report the tasks ``read`` returns at each scrape: the supervisor counts anyway."""
        self._tasks = read

    async def scrape(self) -> bytes:
        """The text a Prometheus server reads: every series recorded so far; nothing while
        metrics are off."""
        for refresh in self._before_scrape:
            await refresh()
        if not self.enabled:
            return b""
        return "".join(f"{line}\n" for line in self.lines()).encode()

    def lines(self) -> Iterator[str]:
        """The recorded values, one line of Prometheus' text format at a time."""
        for recorded in (
            self._requests, self._request_seconds, self._consumed, self._handler_seconds,
            self._published, self._confirm_seconds, self._reconnects,
        ):  # fmt: skip
            yield from recorded.lines()
        for name, help_text, value in (
            ("messages_in_flight", "Deliveries being handled", self._in_flight),
            ("broker_connected", "1 while the broker link is up", self._connected),
        ):
            yield from _header(f"{NAMESPACE}_{name}", help_text, "gauge")
            yield f"{NAMESPACE}_{name} {_number(value)}"
        if self._tasks is not None:
            yield from _task_lines(self._tasks())


def _observe(timing: Timing, seconds: float) -> None:
    timing[0][bisect.bisect_left(BUCKETS, seconds)] += 1  # le: a bound counts as inside
    timing[1][0] += seconds


# Per task: the series' name, its help, its type, and the attribute of TaskNumbers it reads.
TASK_SERIES = (
    ("runs_total", "Task runs started", "counter", "runs"),
    ("failures_total", "Task failures", "counter", "failures_total"),
    ("restarts_total", "Task restarts", "counter", "restarts"),
    ("last_success_timestamp_seconds", "Unix time of the task's last success", "gauge",
     "last_success"),
)  # fmt: skip


def _task_lines(tasks: Mapping[str, TaskNumbers]) -> Iterator[str]:
    for name, help_text, kind, attribute in TASK_SERIES:
        series = f"{NAMESPACE}_task_{name}"
        yield from _header(series, help_text, kind)
        for task_name, task in tasks.items():
            value: float | None = getattr(task, attribute)
            if value is not None:  # a task that never succeeded has no last success
                yield f"{series}{_labels(('task',), (task_name,))} {_number(value)}"


def _header(name: str, help_text: str, kind: str) -> Iterator[str]:
    yield f"# HELP {name} {help_text}"
    yield f"# TYPE {name} {kind}"


def _labels(names: tuple[str, ...], values: tuple[str, ...]) -> str:
    if not names:
        return ""
    pairs = ",".join(
        f'{name}="{_escaped(value)}"' for name, value in zip(names, values, strict=True)
    )
    return "{" + pairs + "}"  # not an f-string: its braces would be Jinja's in the template


def _escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return "NaN" if math.isnan(value) else repr(float(value))


METRICS = web.AppKey("metrics", Metrics)


def setup(app: web.Application, metrics: Metrics) -> None:
    """Give the app its metrics and, if they are on, ``GET /metrics`` (not in OpenAPI)."""
    app[METRICS] = metrics
    if not metrics.enabled:
        return

    async def serve(request: web.Request) -> web.Response:
        body = await metrics.scrape()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    front.add_route(app, "GET", "/metrics", serve, name="metrics")
