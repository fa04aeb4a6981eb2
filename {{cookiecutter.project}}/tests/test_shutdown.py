"""Shutdown on each broker: handlers in flight finish and are acked within the shutdown timeout;
one that takes longer is cancelled and its message stays with the broker, to be redelivered."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web
from pydantic import BaseModel

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.amqp import AmqpBroker
from {{ cookiecutter.package }}.runtime.broker import BROKER
from {{ cookiecutter.package }}.runtime.memory import MemoryBroker
from {{ cookiecutter.package }}.runtime.messaging import EventHandlers
from {{ cookiecutter.package }}.runtime.tasks import Tasks
from {{ cookiecutter.package }}.settings import Settings

from .conftest import Client, RawBroker, eventually, queued


class Job(BaseModel):
    seconds: float


async def test_in_flight_handlers_finish_or_go_back_to_the_queue(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> None:
    started: list[float] = []
    finished: list[float] = []

    async def work(app: web.Application, job: Job) -> None:
        started.append(job.seconds)
        await asyncio.sleep(job.seconds)
        finished.append(job.seconds)

    events = EventHandlers()
    events.subscribe("test.job", Job)(work)
    settings = settings.model_copy(update={"shutdown_timeout": 1.0})
    client = await start(create_app(settings, events=events, jobs=Tasks()))
    broker = client.app[BROKER]
    raw = RawBroker(client.app)
    await raw.publish("test.job", b'{"seconds": 0.3}')  # finishes within the timeout
    await raw.publish("test.job", b'{"seconds": 30}')  # does not

    async def both_started() -> bool:
        return len(started) == 2

    await eventually(both_started)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await client.close()  # the app's shutdown, as on SIGTERM
    assert loop.time() - began < 1.0 + 1.5  # the timeout, and a little for closing
    assert finished == [0.3]
    assert await raw.dead_letters() == []
    if isinstance(broker, MemoryBroker):
        assert broker.queued == 1  # the unfinished one, back in the queue
    else:
        assert isinstance(broker, AmqpBroker)

        async def back_in_the_queue() -> bool:
            return await queued(broker.topology.names.service) == 1

        await eventually(back_in_the_queue)
