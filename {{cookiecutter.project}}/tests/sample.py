"""A small service of the runtime's tests, so that they never depend on ``service/``.

It records readings: ``POST /test/readings`` publishes ``test.reading``, whose handler counts
each reading id once; ``GET /test/readings/{key}`` shows the count for one key. ``test.job``
messages sleep ``seconds``, then print ``handled <id>``, which is how tests watching a process's
stdout see which messages it finished; ``test.broken`` messages always fail.
``GET /test/slow?seconds=`` answers late. ``POST /test/relay`` starts a chain of two events whose
first handler may fail a few times, for the tracing tests. It declares what the runtime's tests
publish through it, ``nobody.listens`` included. Example use::

    client = await start(sample_app(make_settings()))
    await client.post("/test/readings", json={"key": "k", "value": 1})
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from uuid import UUID, uuid4

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.broker import PUBLISHER
from {{ cookiecutter.package }}.runtime.correlation import CORRELATION_ID
from {{ cookiecutter.package }}.runtime.http import HttpError, Routes
from {{ cookiecutter.package }}.runtime.messaging import EventHandlers, MessageInfo
from {{ cookiecutter.package }}.runtime.tasks import Tasks
from {{ cookiecutter.package }}.settings import Settings

log = logging.getLogger(__name__)


class ReadingIn(BaseModel):
    """Body of ``POST /test/readings``: a string and a number, checked strictly."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    value: float


class Reading(ReadingIn):
    """Event ``test.reading``."""

    model_config = ConfigDict(extra="ignore")

    id: UUID


class Accepted(BaseModel):
    id: UUID


class KeyPath(BaseModel):
    key: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class SlowQuery(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    seconds: float = Field(default=0.5, ge=0, le=30)


class Count(BaseModel):
    key: str
    count: int


class Done(BaseModel):
    slow: str


class Job(BaseModel):
    """Event ``test.job``."""

    id: int
    seconds: float = 0.0


class Relay(BaseModel):
    """Events ``test.relay`` and ``test.relayed``: the first one's handler fails ``failures``
    times, then publishes the second."""

    id: int
    failures: int = 0


class Readings:
    """Ids handled so far, how many distinct ids each key had, the correlation id each handler
    run had, and the relays that arrived."""

    def __init__(self) -> None:
        self.seen: set[UUID] = set()
        self.counts: Counter[str] = Counter()
        self.correlation_ids: list[str | None] = []
        self.relayed: list[int] = []


READINGS = web.AppKey("readings", Readings)

routes = Routes()
events = EventHandlers()
events.publishes("test.reading", Reading)
events.publishes("test.job", Job)
events.publishes("test.broken", Job)
events.publishes("nobody.listens", Job, "A routing key no queue is bound to")
events.publishes("test.relay", Relay)
events.publishes("test.relayed", Relay)


@routes.post("/test/readings", body=ReadingIn, response=Accepted, status=202, errors=(503,))
async def record(request: web.Request, body: ReadingIn) -> Accepted:
    reading = Reading(id=uuid4(), key=body.key, value=body.value)
    await request.app[PUBLISHER].publish("test.reading", reading)
    return Accepted(id=reading.id)


@routes.get("/test/readings/{key}", path=KeyPath, response=Count, errors=(404,))
async def count(request: web.Request, path: KeyPath) -> Count:
    key = path.key
    if key not in request.app[READINGS].counts:
        raise HttpError(404, f"no reading of {key!r}")
    return Count(key=key, count=request.app[READINGS].counts[key])


@events.subscribe("test.reading", Reading)
async def on_reading(app: web.Application, reading: Reading) -> None:
    readings = app[READINGS]
    readings.correlation_ids.append(CORRELATION_ID.get())
    if reading.id in readings.seen:
        log.info("reading %s was delivered again; already counted", reading.id)
        return
    readings.seen.add(reading.id)
    readings.counts[reading.key] += 1


@events.subscribe("test.broken", Job)
async def broken(app: web.Application, job: Job) -> None:
    app[READINGS].correlation_ids.append(CORRELATION_ID.get())
    raise RuntimeError(f"job {job.id} always fails")


@events.subscribe("test.job", Job)
async def work(app: web.Application, job: Job) -> None:
    await asyncio.sleep(job.seconds)
    print(f"handled {job.id}", flush=True)


@routes.get("/test/slow", query=SlowQuery, response=Done)
async def slow(request: web.Request, query: SlowQuery) -> Done:
    await asyncio.sleep(query.seconds)
    return Done(slow="done")


@routes.post("/test/relay", body=Relay, response=Relay, status=202, errors=(503,))
async def relay(request: web.Request, body: Relay) -> Relay:
    await request.app[PUBLISHER].publish("test.relay", body)
    return body


@events.subscribe("test.relay", Relay)
async def on_relay(app: web.Application, relay: Relay, message: MessageInfo) -> None:
    if message.attempt <= relay.failures:
        raise RuntimeError(f"relay {relay.id} fails on attempt {message.attempt}")
    await app[PUBLISHER].publish("test.relayed", relay)


@events.subscribe("test.relayed", Relay)
async def on_relayed(app: web.Application, relay: Relay) -> None:
    app[READINGS].relayed.append(relay.id)
    print(f"relayed {relay.id}", flush=True)


def sample_app(
    settings: Settings, jobs: Tasks | None = None, tracer_provider: TracerProvider | None = None
) -> web.Application:
    """The runtime with this module's routes and handlers, ``jobs`` (none by default), and
    spans sent to ``tracer_provider`` if given."""
    jobs = jobs or Tasks()
    app = create_app(
        settings, routes=routes, events=events, jobs=jobs, tracer_provider=tracer_provider
    )
    app[READINGS] = Readings()
    return app
