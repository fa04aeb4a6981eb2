"""The composition root: the one place that builds the app and orders start-up and shutdown.

Example use::

    app = create_app(load_settings([]))
    serve(app, app[SETTINGS])

Start-up runs the cleanup contexts in the order they are appended; shutdown runs them backwards,
after aiohttp has stopped listening and the ``on_shutdown`` hooks have run:

    SIGTERM -> stop listening -> take no new deliveries -> in-flight HTTP requests finish
            -> in-flight event handlers finish -> tasks stop -> broker connection closes
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, metadata
from typing import TYPE_CHECKING

from aiohttp import web

from . import service
from .runtime import asyncapi, broker, front, health, http, lifecycle, metrics, tasks
from .runtime.http import Routes
from .runtime.messaging import EventHandlers
from .runtime.tasks import Tasks
from .runtime.tracing import tracing_for
from .settings import SETTINGS, Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

DISTRIBUTION = "{{ cookiecutter.project }}"


def create_app(
    settings: Settings,
    *,
    routes: Routes = service.routes,
    events: EventHandlers = service.events,
    jobs: Tasks = service.tasks,
    tracer_provider: TracerProvider | None = None,
) -> web.Application:
    """Build the service: its own code from ``service`` plugged into the runtime.

    The runtime's tests pass ``routes``, ``events`` or ``jobs`` of their own, so that they do
    not depend on the service's code, and a ``tracer_provider`` to capture spans; without one,
    the ``OTEL_*`` environment variables say whether to trace (``runtime/tracing.py``).
    """
    version, description = _about()
    tracing = tracing_for(settings, version, tracer_provider)
    recorded = metrics.Metrics(settings.metrics_enabled)
    app = web.Application(client_max_size=settings.max_body_size)
    front.setup(app, recorded if settings.metrics_enabled else None, tracing)
    app[SETTINGS] = settings
    app[lifecycle.SHUTDOWN] = lifecycle.ShutdownClock(settings.shutdown_timeout)
    metrics.setup(app, recorded)

    service.setup(app, settings)
    http.setup(app, [routes, health.routes], DISTRIBUTION, version, description)
    asyncapi.setup(app, events, DISTRIBUTION, version, description)
    broker.setup(app, events, tracing)
    tasks.setup(app, jobs)
    front.close(app)  # after the last route

    # Start-up order; shutdown is the reverse.
    app.cleanup_ctx.append(broker.connection)  # publishing works from here on
    app.cleanup_ctx.append(tasks.background_tasks)  # tasks may publish
    app.cleanup_ctx.append(broker.consumer)  # handlers may use all of the above

    # On SIGTERM, while in-flight HTTP requests finish.
    app.on_shutdown.append(lifecycle.begin_shutdown)
    app.on_shutdown.append(broker.stop_deliveries)
    if tracing is not None:
        app.on_cleanup.append(tracing.close)  # after the broker closed: the last spans
    return app


def _about() -> tuple[str, str]:
    """Version and description, from pyproject.toml by way of the installed package."""
    try:
        about = metadata(DISTRIBUTION)
    except PackageNotFoundError:
        return "0.0.0", ""
    return about["Version"], about["Summary"] or ""
