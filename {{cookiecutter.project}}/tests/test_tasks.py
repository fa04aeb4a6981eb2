"""Background tasks under supervision, tested without waiting real time: intervals and backoff
come from settings, shrunk to milliseconds here."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.messaging import EventHandlers
from {{ cookiecutter.package }}.runtime.tasks import SUPERVISOR, Supervisor, Tasks

from .conftest import Client, eventually, make_settings, readiness_is


def supervisor_for(tasks: Tasks, **settings: float) -> Supervisor:
    app = create_app(make_settings(**settings), events=EventHandlers(), jobs=tasks)
    return app[SUPERVISOR]


async def test_failing_task_restarts_with_backoff_and_logs_one_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks()
    runs: list[float] = []

    @tasks.long_running
    async def flaky(app: web.Application) -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) <= 4:
            raise OSError("device not answering")
        await asyncio.Event().wait()

    supervisor = supervisor_for(tasks, task_backoff_max=0.2)
    with caplog.at_level(logging.WARNING):
        supervisor.start()
        await eventually(lambda: _at_least(runs, 5))
        await supervisor.stop(1.0)
    pauses = [b - a for a, b in itertools.pairwise(runs)]
    # Backoff doubles (0.2 is the cap here, so from 0.2 on): never a tight loop.
    assert all(pause >= 0.19 for pause in pauses[:4])
    tracebacks = [r for r in caplog.records if r.exc_info and "flaky" in r.getMessage()]
    assert len(tracebacks) == 1
    state = supervisor.states["flaky"]
    assert state.restarts == 4
    assert state.last_error == "OSError: device not answering"


async def test_periodic_task_never_overlaps_itself() -> None:
    tasks = Tasks()
    running = 0
    most = 0
    runs = 0

    @tasks.periodic(every=0.01, at_startup=True)
    async def slow(app: web.Application) -> None:
        nonlocal running, most, runs
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.05)  # five times the interval
        running -= 1
        runs += 1

    supervisor = supervisor_for(tasks)
    supervisor.start()
    await eventually(lambda: _true(runs >= 3))
    await supervisor.stop(1.0)
    assert most == 1
    assert supervisor.states["slow"].last_success is not None


async def test_periodic_success_resets_failure_state() -> None:
    tasks = Tasks()
    calls = 0

    @tasks.periodic(every=0.01, at_startup=True)
    async def sometimes(app: web.Application) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ValueError("first run fails")

    supervisor = supervisor_for(tasks, task_backoff_max=0.01)
    supervisor.start()
    await eventually(lambda: _true(calls >= 3))
    await supervisor.stop(1.0)
    state = supervisor.states["sometimes"]
    assert state.failing_since is None
    assert state.restarts == 1


async def test_tasks_are_cancelled_in_reverse_order_at_shutdown() -> None:
    tasks = Tasks()
    cancelled: list[str] = []

    def forever(name: str) -> Callable[[web.Application], Awaitable[None]]:
        async def run(app: web.Application) -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.append(name)
                raise

        run.__name__ = name
        return run

    for name in ("first", "second", "third"):
        tasks.long_running(forever(name))
    supervisor = supervisor_for(tasks)
    supervisor.start()
    await asyncio.sleep(0.01)
    await supervisor.stop(1.0)
    assert cancelled == ["third", "second", "first"]
    assert {state.state for state in supervisor.states.values()} == {"stopped"}


async def test_task_ignoring_cancellation_is_named_and_does_not_hang_shutdown(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks()
    release = asyncio.Event()

    @tasks.long_running
    async def stubborn(app: web.Application) -> None:
        while not release.is_set():
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                continue  # the bug this test is about

    supervisor = supervisor_for(tasks)
    supervisor.start()
    await asyncio.sleep(0.01)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with caplog.at_level(logging.ERROR):
        await supervisor.stop(0.2)
    assert loop.time() - began < 1.0
    assert any("stubborn" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    release.set()
    for task in asyncio.all_tasks():
        if task.get_name() == "task:stubborn":
            task.cancel()
            await asyncio.wait({task}, timeout=1)


async def test_readiness_turns_503_when_a_task_keeps_failing(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    tasks = Tasks()

    @tasks.periodic(every=0.01, at_startup=True)
    async def broken(app: web.Application) -> None:
        raise RuntimeError("the bus is down")

    client = await start(
        create_app(
            make_settings(task_unhealthy_after=0.1, task_backoff_max=0.02),
            events=EventHandlers(),
            jobs=tasks,
        )
    )

    async def unready() -> bool:
        response = await client.get("/health/ready")
        return response.status == 503

    await eventually(unready)
    report = await (await client.get("/health/ready")).json()
    assert any("broken" in reason and "the bus is down" in reason for reason in report["reasons"])
    assert report["tasks"]["broken"]["last_error"] == "RuntimeError: the bus is down"


async def _at_least(items: list[float], count: int) -> bool:
    return len(items) >= count


async def _true(value: bool) -> bool:
    return value


async def test_periodic_jitter_spreads_the_pauses() -> None:
    tasks = Tasks()
    starts: list[float] = []

    @tasks.periodic(every=0.01, jitter=0.04, at_startup=True)
    async def spread(app: web.Application) -> None:
        starts.append(asyncio.get_running_loop().time())

    supervisor = supervisor_for(tasks)
    supervisor.start()
    await eventually(lambda: _true(len(starts) >= 8))
    await supervisor.stop(1.0)
    pauses = [b - a for a, b in itertools.pairwise(starts)]
    assert all(pause >= 0.01 for pause in pauses)  # never shorter than the interval
    assert max(pauses) - min(pauses) > 0.005  # and not all the same: replicas drift apart


async def test_a_long_running_task_that_recovers_makes_the_service_ready_for_good(
    start: Callable[[web.Application], Awaitable[Client]], caplog: pytest.LogCaptureFixture
) -> None:
    tasks = Tasks()
    began: list[float] = []

    @tasks.long_running
    async def flaky(app: web.Application) -> None:
        now = asyncio.get_running_loop().time()
        began.append(now)
        if now - began[0] < 0.5:
            raise ConnectionError("the broker blinked")
        await asyncio.Event().wait()  # from here on it runs well

    settings = make_settings(
        task_unhealthy_after=0.2, task_recovered_after=0.3, task_backoff_max=0.05
    )
    client = await start(create_app(settings, events=EventHandlers(), jobs=tasks))
    with caplog.at_level(logging.INFO):
        await eventually(readiness_is(client, 503))  # a streak longer than 0.2 s
        await eventually(readiness_is(client, 200), within=5)  # ran 0.3 s without failing
        for _ in range(10):  # and stays ready, five times task_unhealthy_after
            assert (await client.get("/health/ready")).status == 200
            await asyncio.sleep(0.1)
    report = (await (await client.get("/health/ready")).json())["tasks"]["flaky"]
    assert report["failing_since"] is None
    assert report["last_success"] is not None
    assert report["last_error"] == "ConnectionError: the broker blinked"
    assert report["restarts"] == len(began) - 1 >= 3
    recovered = [r.getMessage() for r in caplog.records if "recovered" in r.getMessage()]
    assert recovered == [f"task flaky recovered after {len(began) - 1} failure(s)"]


async def test_a_long_running_task_that_returns_is_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tasks = Tasks()
    runs = 0

    @tasks.long_running
    async def quits(app: web.Application) -> None:
        nonlocal runs
        runs += 1

    supervisor = supervisor_for(tasks, task_backoff_max=0.01)
    supervisor.start()
    await eventually(lambda: _true(runs >= 3))
    await supervisor.stop(1.0)
    state = supervisor.states["quits"]
    assert state.failing_since is not None
    assert state.last_success is None
    assert "returned" in str(state.last_error)
