"""Background tasks: declared by the service, started and supervised by the runtime.

Two kinds. A periodic task runs every ``every`` seconds, never overlapping itself: a run that
takes longer than the interval delays the next one. A long-running task is a loop the service
owns; if it returns or raises, it is started again. Example use::

    tasks = Tasks()

    @tasks.periodic(every=lambda settings: settings.summary_interval)
    async def publish_summary(app: web.Application) -> None: ...

A task that raises is logged once with its traceback and restarted after a pause that doubles up
to ``task_backoff_max``; a success (a periodic run, or a long-running task that ran longer than
the cap) resets the pause. A task failing for longer than ``task_unhealthy_after`` makes the
service unready. At shutdown tasks are cancelled in reverse order of start.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, NoReturn

from aiohttp import web

from ..settings import SETTINGS, Settings
from .lifecycle import SHUTDOWN

log = logging.getLogger(__name__)

TaskFunction = Callable[[web.Application], Awaitable[None]]
Interval = float | Callable[[Settings], float]

FIRST_BACKOFF = 1.0


@dataclass(frozen=True)
class TaskSpec:
    """One declared task."""

    name: str
    function: TaskFunction
    kind: Literal["periodic", "long-running"]
    every: Interval = 0.0
    jitter: float = 0.0
    at_startup: bool = False

    def interval(self, settings: Settings) -> float:
        return self.every(settings) if callable(self.every) else self.every


class Tasks:
    """The service's background tasks, in the order they start."""

    def __init__(self) -> None:
        self.specs: list[TaskSpec] = []

    def periodic(
        self, every: Interval, *, jitter: float = 0.0, at_startup: bool = False
    ) -> Callable[[TaskFunction], TaskFunction]:
        """Run the decorated function every ``every`` seconds (a number, or read from settings).

        ``jitter`` adds up to that many random seconds to each pause, so replicas do not all
        run at once; ``at_startup`` runs it once right away instead of after the first pause.
        """

        def register(function: TaskFunction) -> TaskFunction:
            self.specs.append(
                TaskSpec(function.__name__, function, "periodic", every, jitter, at_startup)
            )
            return function

        return register

    def long_running(self, function: TaskFunction) -> TaskFunction:
        """Run the decorated function for as long as the service runs."""
        self.specs.append(TaskSpec(function.__name__, function, "long-running"))
        return function


@dataclass
class TaskState:
    """What readiness shows of one task."""

    state: Literal["starting", "running", "restarting", "stopped"] = "starting"
    restarts: int = 0
    failing_since: float | None = None
    last_error: str | None = None
    last_success: float | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "state": self.state,
            "restarts": self.restarts,
            "failing_since": _iso(self.failing_since),
            "last_error": self.last_error,
            "last_success": _iso(self.last_success),
        }


class Supervisor:
    """Starts the tasks, restarts the ones that fail and stops them all at shutdown."""

    def __init__(self, app: web.Application, specs: list[TaskSpec]) -> None:
        self._app = app
        self._settings = app[SETTINGS]
        self._specs = specs
        self.states: dict[str, TaskState] = {spec.name: TaskState() for spec in specs}
        self._running: dict[str, asyncio.Task[None]] = {}

    def start(self) -> None:
        """Start every task; safe to call twice."""
        for spec in self._specs:
            if spec.name not in self._running:
                self._running[spec.name] = asyncio.create_task(
                    self._supervise(spec), name=f"task:{spec.name}"
                )

    async def stop(self, grace: float) -> None:
        """Cancel the tasks in reverse order of start, waiting ``grace`` seconds in all.

        A task that ignores cancellation is named in the log and left behind.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        for name, task in reversed(list(self._running.items())):
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=max(deadline - loop.time(), 0.01))
            self.states[name].state = "stopped"
            if not done:
                log.error("task %s ignored cancellation; leaving it behind at shutdown", name)
        self._running.clear()

    def failing(self) -> list[str]:
        """Names of the tasks failing for longer than ``task_unhealthy_after``."""
        limit = time.time() - self._settings.task_unhealthy_after
        return [
            name
            for name, state in self.states.items()
            if state.failing_since is not None and state.failing_since <= limit
        ]

    async def _supervise(self, spec: TaskSpec) -> None:
        state = self.states[spec.name]
        backoff_max = self._settings.task_backoff_max
        backoff = first_backoff = min(FIRST_BACKOFF, backoff_max)
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            state.state = "running"
            try:
                if spec.kind == "periodic":
                    await self._run_periodic(spec, state)  # returns only by raising
                else:
                    await spec.function(self._app)
                    log.warning("long-running task %s returned; starting it again", spec.name)
                    backoff = first_backoff
            except Exception as exc:
                if spec.kind == "long-running" and loop.time() - started >= backoff_max:
                    state.failing_since = None  # it ran well for a while: this is a new streak
                if state.failing_since is None:
                    state.failing_since = time.time()
                    backoff = first_backoff
                    log.exception("task %s failed; restarting it", spec.name)
                else:
                    log.warning("task %s failed again: %s: %s", spec.name, type(exc).__name__, exc)
                state.last_error = f"{type(exc).__name__}: {exc}"[:500]
            state.state = "restarting"
            state.restarts += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, backoff_max)

    async def _run_periodic(self, spec: TaskSpec, state: TaskState) -> NoReturn:
        interval = spec.interval(self._settings)
        if not spec.at_startup or state.restarts:
            await asyncio.sleep(interval + random.uniform(0, spec.jitter))
        while True:
            await spec.function(self._app)
            state.last_success = time.time()
            state.failing_since = None
            await asyncio.sleep(interval + random.uniform(0, spec.jitter))


SUPERVISOR = web.AppKey("supervisor", Supervisor)


def setup(app: web.Application, tasks: Tasks) -> None:
    """Give the app a supervisor for ``tasks``; ``background_tasks`` starts and stops it."""
    app[SUPERVISOR] = Supervisor(app, tasks.specs)


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: start the tasks; at shutdown cancel them within the shutdown budget."""
    supervisor = app[SUPERVISOR]
    supervisor.start()
    yield
    await supervisor.stop(app[SHUTDOWN].remaining())


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
