"""What metrics cost per request and per delivery, timed inside one process: the service's app
with metrics on and off, side by side, in alternating blocks; the best block of each is kept,
since this machine only ever adds time. Run with the service's interpreter:

python overhead.py  -> prints JSON: microseconds per GET through the route's wrapped
handler, and per delivery through the dispatcher to the example's handler and the ack, on / off

The GET runs the route's handler, as ``front.py`` wrapped it, on a ready request; the
delivery runs ``Dispatcher.handle`` on the in-process broker's message type, acked at once.
Neither includes the network or the broker, which metrics do not touch.
"""

import asyncio
import json
import time
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from measurement_service.app import create_app
from measurement_service.runtime.broker import DISPATCHER
from measurement_service.service.models import MeasurementRecorded
from measurement_service.settings import Settings

BLOCK = 2000
BLOCKS = 40


class Delivery:
    """A delivery of ``measurement.recorded`` whose settling costs nothing."""

    routing_key = "measurement.recorded"
    message_id = None
    correlation_id = None
    redelivered = False

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.headers: dict[str, Any] = {}

    async def ack(self) -> None:
        pass

    async def retry(self, headers: Any) -> None:
        raise AssertionError("the example's handler does not fail")

    dead_letter = retry


async def get_chain(metrics: bool) -> tuple[Any, web.Request]:
    app = create_app(Settings(amqp_url="memory://", metrics_enabled=metrics, log_level="ERROR"))
    app.freeze()
    event = MeasurementRecorded(
        id=uuid4(), sensor="bench", value=1.0, recorded_at=datetime.now(UTC)
    )
    await app[DISPATCHER].handle(Delivery(event.model_dump_json().encode()))
    request = make_mocked_request("GET", "/sensors/bench", app=app)
    match = await app.router.resolve(request)
    match.add_app(app)
    match.freeze()
    request._match_info = match  # what aiohttp's server does once it has resolved the route
    assert not app.middlewares, "the app has middlewares again: time their chain too"
    return match.handler, request


async def timed_gets(chain: Any, request: web.Request) -> float:
    started = time.perf_counter()
    for _ in range(BLOCK):
        await chain(request)
    return (time.perf_counter() - started) / BLOCK * 1e6


def event_bodies(count: int) -> list[bytes]:
    """``count`` measurement.recorded events of 50 sensors, as they come off the wire."""
    return [
        MeasurementRecorded(
            id=uuid4(), sensor=f"s{i % 50}", value=1.0, recorded_at=datetime.now(UTC)
        )
        .model_dump_json()
        .encode()
        for i in range(count)
    ]


async def timed_deliveries(app: web.Application) -> float:
    bodies = event_bodies(BLOCK)
    handle = app[DISPATCHER].handle
    started = time.perf_counter()
    for body in bodies:
        await handle(Delivery(body))
    return (time.perf_counter() - started) / BLOCK * 1e6


async def main() -> None:
    chains = {name: await get_chain(name == "on") for name in ("on", "off")}
    apps = {
        name: create_app(Settings(amqp_url="memory://", metrics_enabled=name == "on"))
        for name in ("on", "off")
    }
    best: dict[str, float] = {}
    for block in range(BLOCKS):
        for name in ("on", "off") if block % 2 == 0 else ("off", "on"):
            get = await timed_gets(*chains[name])
            delivery = await timed_deliveries(apps[name])
            best[f"get_{name}"] = min(best.get(f"get_{name}", get), get)
            best[f"delivery_{name}"] = min(best.get(f"delivery_{name}", delivery), delivery)
    print(json.dumps(best))


if __name__ == "__main__":
    asyncio.run(main())
