"""Running the app until SIGTERM or SIGINT, and the one time budget that shutdown shares.

On a signal aiohttp stops listening, runs ``on_shutdown`` hooks, waits for in-flight requests,
then runs the cleanup contexts backwards. Every phase waits only until one deadline, so the
whole shutdown takes about ``shutdown_timeout``. Example use::

    app[SHUTDOWN] = ShutdownClock(settings.shutdown_timeout)
    app.on_shutdown.append(begin_shutdown)
    serve(app, settings)  # returns after a graceful shutdown
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ..settings import Settings

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


def serve(app: web.Application, settings: Settings) -> None:
    """Run ``app`` on its own event loop until SIGTERM or SIGINT, then shut it down gracefully."""
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        shutdown_timeout=settings.shutdown_timeout,
        access_log=logging.getLogger("aiohttp.access"),
        print=None,
        handle_signals=True,
    )
