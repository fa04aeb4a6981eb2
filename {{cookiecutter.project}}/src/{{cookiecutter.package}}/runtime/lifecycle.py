"""Running the app until SIGTERM or SIGINT, and the one time budget that shutdown shares.

On the first signal aiohttp stops listening, runs ``on_shutdown`` hooks, waits for in-flight
requests, then runs the cleanup contexts backwards. Every phase waits only until one deadline,
so the whole shutdown takes about ``shutdown_timeout``; a second signal exits at once. Example
use::

    app[SHUTDOWN] = ShutdownClock(settings.shutdown_timeout)
    app.on_shutdown.append(begin_shutdown)
    serve(app, settings)  # returns after a graceful shutdown
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal

from aiohttp import web

from .settings import RuntimeSettings

log = logging.getLogger(__name__)


class ShutdownClock:
    """The deadline by which shutdown should be over, started by the first phase that asks."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._deadline: float | None = None

    def start(self) -> None:
        """Start counting; later calls keep the first deadline."""
        self.remaining()

    def remaining(self) -> float:
        """Seconds left until the deadline; the first call starts the clock."""
        now = asyncio.get_running_loop().time()
        if self._deadline is None:
            self._deadline = now + self.timeout
        return max(self._deadline - now, 0.0)


SHUTDOWN = web.AppKey("shutdown", ShutdownClock)


async def begin_shutdown(app: web.Application) -> None:
    """First ``on_shutdown`` hook: the listening socket is closed; start the clock."""
    log.info("shutting down; in-flight work has %.1fs to finish", app[SHUTDOWN].timeout)
    app[SHUTDOWN].start()


def serve(app: web.Application, settings: RuntimeSettings) -> None:
    """Run ``app`` on an event loop of its own until SIGTERM or SIGINT, then shut it down.

    Unlike ``web.run_app``, this never waits without bound at the end: a task that ignores
    cancellation is named in the log and left behind, so the process still exits.
    """
    loop = new_event_loop(settings.event_loop)
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(_serve(app, settings))
    finally:
        _abandon_leftovers(loop)
        asyncio.set_event_loop(None)
        loop.close()


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind ``choice`` names (the ``event_loop`` setting, which refuses
    uvloop where it is not installed). uvloop's transports are written in C: the same CPU
    serves more requests (the template's benchmark). ``auto`` takes it where it is installed."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


async def _serve(app: web.Application, settings: RuntimeSettings) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_signal(name: str) -> None:
        if stop.is_set():
            log.warning("second %s during shutdown: exiting now", name)
            os._exit(1)
        log.info("%s received", name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum.name)
    runner = web.AppRunner(
        app,
        handle_signals=False,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=logging.getLogger("aiohttp.access"),
    )
    try:
        await runner.setup()  # runs the cleanup contexts' start-up halves
        await web.TCPSite(runner, settings.http_host, settings.http_port).start()
        kind = type(loop).__module__.partition(".")[0]  # uvloop, or asyncio
        log.info(
            "listening on http://%s:%d, on the %s event loop",
            settings.http_host, settings.http_port, kind,
        )  # fmt: skip
        await stop.wait()
    finally:
        await runner.cleanup()


def _abandon_leftovers(loop: asyncio.AbstractEventLoop) -> None:
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        _, stuck = loop.run_until_complete(asyncio.wait(pending, timeout=1.0))
        for task in stuck:
            log.error("task %s ignored cancellation; exiting without it", task.get_name())
