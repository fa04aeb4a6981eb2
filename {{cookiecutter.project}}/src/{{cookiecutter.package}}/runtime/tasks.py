"""Background tasks: declared by the service, started and supervised by the runtime.

Two kinds. A periodic task runs every ``every`` seconds, never overlapping itself: a run that
takes longer than the interval delays the next one. A long-running task is a loop the service
owns, meant to run as long as the service does. Example use::

    tasks = Tasks()

    @tasks.periodic(every=lambda app: app[SERVICE_SETTINGS].summary_interval)
    async def publish_summary(app: web.Application) -> None: ...

Failure and recovery, the same for both kinds:

- a task that raises (or a long-running task that returns) is restarted after a pause that
  doubles up to ``task_backoff_max``; the first failure of a streak is logged with its
  traceback, the rest in one line each;
- a task succeeds when a periodic run completes, or when a long-running task has run
  ``task_recovered_after`` seconds since its last start without failing. A success ends the
  streak: the pause starts again from the shortest, ``last_success`` is set, and if there was a
  streak the log says the task recovered;
- a streak longer than ``task_unhealthy_after`` makes the service unready, until a success.

At shutdown tasks are cancelled in reverse order of start. ``keep_running`` does the same job
for the runtime's own loops, such as the AMQP connection keeper.
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

from .lifecycle import SHUTDOWN
from .metrics import METRICS
from .settings import SETTINGS

log = logging.getLogger(__name__)

TaskFunction = Callable[[web.Application], Awaitable[None]]
# Seconds, or a function of the app that reads them (from settings, say) when the task starts.
Interval = float | Callable[[web.Application], float]

FIRST_BACKOFF = 1.0
LOOP_BACKOFF_MAX = 30.0


@dataclass(frozen=True)
class TaskSpec:
    """One declared task."""

    name: str
    function: TaskFunction
    kind: Literal["periodic", "long-running"]
    every: Interval = 0.0
    jitter: float = 0.0
    at_startup: bool = False

    def interval(self, app: web.Application) -> float:
        return self.every(app) if callable(self.every) else self.every


class Tasks:
    """The service's background tasks, in the order they start.

    The app reads them when it is built; declaring one after that raises ``RuntimeError``,
    since it would never run.
    """

    def __init__(self) -> None:
        self.specs: list[TaskSpec] = []
        self._frozen = False

    def freeze(self) -> None:
        """Refuse further declarations; ``create_app`` calls this."""
        self._frozen = True

    def periodic(
        self, every: Interval, *, jitter: float = 0.0, at_startup: bool = False
    ) -> Callable[[TaskFunction], TaskFunction]:
        """Run the decorated function every ``every`` seconds (a number, or a function of the app).

        ``jitter`` adds up to that many random seconds to each pause, so replicas do not all
        run at once; ``at_startup`` runs it once right away instead of after the first pause.
        """

        def register(function: TaskFunction) -> TaskFunction:
            self._add(TaskSpec(function.__name__, function, "periodic", every, jitter, at_startup))
            return function

        return register

    def long_running(self, function: TaskFunction) -> TaskFunction:
        """Run the decorated function for as long as the service runs."""
        self._add(TaskSpec(function.__name__, function, "long-running"))
        return function

    def _add(self, spec: TaskSpec) -> None:
        if self._frozen:
            raise RuntimeError(
                f"task {spec.name} was declared after the app was built, so it would never run; "
                "declare tasks at import time, before create_app"
            )
        self.specs.append(spec)


@dataclass
class TaskState:
    """What readiness shows of one task."""

    state: Literal["starting", "running", "restarting", "stopped"] = "starting"
    runs: int = 0
    restarts: int = 0
    failures: int = 0  # in the current streak
    failures_total: int = 0
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

    async def _supervise(self, spec: TaskSpec) -> NoReturn:
        state = self.states[spec.name]
        while True:
            state.state = "running"
            try:
                if spec.kind == "periodic":
                    await self._run_periodic(spec, state)
                else:
                    await self._run_long(spec, state)
            except Exception as exc:
                self._failed(spec, state, exc)
            state.state = "restarting"
            state.restarts += 1
            cap = self._settings.task_backoff_max
            await asyncio.sleep(min(FIRST_BACKOFF * 2 ** min(state.failures - 1, 30), cap))

    async def _run_periodic(self, spec: TaskSpec, state: TaskState) -> NoReturn:
        interval = spec.interval(self._app)
        if not spec.at_startup or state.restarts:
            await asyncio.sleep(interval + random.uniform(0, spec.jitter))
        while True:
            state.runs += 1
            await spec.function(self._app)
            self._succeeded(spec, state)
            await asyncio.sleep(interval + random.uniform(0, spec.jitter))

    async def _run_long(self, spec: TaskSpec, state: TaskState) -> None:
        """Run the loop once; having run ``task_recovered_after`` seconds counts as a success."""
        recovered_after = self._settings.task_recovered_after
        timer = asyncio.get_running_loop().call_later(recovered_after, self._succeeded, spec, state)
        state.runs += 1
        try:
            await spec.function(self._app)
        finally:
            timer.cancel()
        raise RuntimeError("the long-running task returned; it should run until cancelled")

    def _succeeded(self, spec: TaskSpec, state: TaskState) -> None:
        state.last_success = time.time()
        if state.failures:
            log.info("task %s recovered after %d failure(s)", spec.name, state.failures)
        state.failures = 0
        state.failing_since = None

    def _failed(self, spec: TaskSpec, state: TaskState, exc: Exception) -> None:
        state.failures += 1
        state.failures_total += 1
        state.last_error = f"{type(exc).__name__}: {exc}"[:500]
        if state.failures == 1:
            state.failing_since = time.time()
            log.exception("task %s failed; restarting it", spec.name)
        else:
            log.warning(
                "task %s failed again (%d in a row): %s",
                spec.name,
                state.failures,
                state.last_error,
            )


SUPERVISOR = web.AppKey("supervisor", Supervisor)


def setup(app: web.Application, tasks: Tasks) -> None:
    """Give the app a supervisor for ``tasks``; ``background_tasks`` starts and stops it."""
    tasks.freeze()
    supervisor = app[SUPERVISOR] = Supervisor(app, tasks.specs)
    app[METRICS].watch_tasks(lambda: supervisor.states)


async def background_tasks(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: start the tasks; at shutdown cancel them within the shutdown budget."""
    supervisor = app[SUPERVISOR]
    supervisor.start()
    yield
    await supervisor.stop(app[SHUTDOWN].remaining())


async def keep_running(name: str, loop: Callable[[], Awaitable[None]]) -> NoReturn:
    """Run ``loop`` for good: if it raises or returns, log it and start it again.

    For the runtime's own loops, which must never end without a word. A loop that ran longer
    than the longest pause is taken to have worked, so its next pause starts short again.
    """
    clock = asyncio.get_running_loop()
    pause = FIRST_BACKOFF
    while True:
        started = clock.time()
        try:
            await loop()
            error = None
        except Exception as exc:
            error = exc
        if clock.time() - started > LOOP_BACKOFF_MAX:
            pause = FIRST_BACKOFF
        if error is None:
            log.error("%s returned; starting it again in %.1fs", name, pause)
        else:
            log.error("%s crashed; starting it again in %.1fs", name, pause, exc_info=error)
        await asyncio.sleep(pause)
        pause = min(pause * 2, LOOP_BACKOFF_MAX)


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
