"""The front of every request: each route's handler runs wrapped in the same few steps.

The wrapper runs the request under its correlation id (``correlation.py``) and answers with it,
turns whatever the handler raises into problem JSON (``problems.py``), counts the answer in the
metrics and, while tracing is on, opens a SERVER span around it all. A catch-all route added
last answers unknown paths (404) and methods (405) the same way. Example use::

    setup(app, metrics, tracing)  # before the first route
    add_route(app, "GET", "/metrics", serve, name="metrics")  # wrapped
    close(app)  # after the last: the catch-all, and a check that every route is wrapped

Why not an aiohttp middleware: with one, aiohttp builds and runs a chain per request, with a
layer of its own that sets the current app. In the template's benchmark, that chain and its
layers took about a sixth of a small GET's time; a handler wrapped once, when it is added,
costs nothing more per request than the steps themselves.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aiohttp import web

from . import correlation
from .problems import Handler, problem_for

if TYPE_CHECKING:
    from .metrics import Metrics
    from .spans import Tracing

# The route label of a request that matched no route: one value for every unknown path.
UNMATCHED = "unmatched"
_FRONTED = "__fronted__"


class Front:
    """Wraps handlers in the steps above; ``metrics`` and ``tracing`` are None while off."""

    def __init__(self, metrics: Metrics | None = None, tracing: Tracing | None = None) -> None:
        self.metrics = metrics
        self.tracing = tracing

    def wrap(self, handler: Handler, route: str) -> Handler:
        """``handler`` of the route template ``route``, wrapped."""
        metrics = self.metrics

        async def fronted(request: web.Request) -> web.StreamResponse:
            started = time.perf_counter()
            correlation_id = correlation.begin(request)
            try:
                response = await handler(request)
            except web.HTTPException as exc:
                if exc.status < 400:  # a redirect is not an error: aiohttp sends it
                    exc.headers[correlation.HEADER] = correlation_id
                    if metrics is not None:
                        metrics.answered(route, request.method, exc.status, started)
                    raise
                response = problem_for(request, exc)
            except Exception as exc:
                response = problem_for(request, exc)
            response.headers[correlation.HEADER] = correlation_id
            if metrics is not None:
                metrics.answered(route, request.method, response.status, started)
            return response

        wrapped: Handler = fronted
        if self.tracing is not None:  # the span encloses the log lines of a failure too
            wrapped = self.tracing.serving(fronted, None if route == UNMATCHED else route)
        setattr(wrapped, _FRONTED, True)
        return wrapped


FRONT = web.AppKey("front", Front)


def setup(app: web.Application, metrics: Metrics | None, tracing: Tracing | None) -> None:
    """Wrap the handlers of the routes added from now on, counting into ``metrics``."""
    app[FRONT] = Front(metrics, tracing)


def add_route(
    app: web.Application,
    method: str,
    path: str,
    handler: Handler,
    *,
    name: str | None = None,
) -> None:
    """Add ``handler`` as the route ``method path``, wrapped in the front."""
    if FRONT not in app:
        raise RuntimeError(f"{method} {path} was added before front.setup(app, ...)")
    app.router.add_route(method, path, app[FRONT].wrap(handler, path), name=name)


def close(app: web.Application) -> None:
    """Add the catch-all route, last. At start-up, refuse a route added around the front
    (with ``app.router`` directly): it would answer without problem JSON, correlation id or
    metrics."""
    catch_all = app.router.add_resource("/{path:.*}", name=UNMATCHED)

    async def unmatched(request: web.Request) -> web.StreamResponse:
        allowed: set[str] = set()
        for resource in app.router.resources():
            if resource is not catch_all:
                allowed |= (await resource.resolve(request))[1]
        if allowed:
            raise web.HTTPMethodNotAllowed(request.method, allowed)
        raise web.HTTPNotFound()

    catch_all.add_route("*", app[FRONT].wrap(unmatched, UNMATCHED))
    app.on_startup.insert(0, _all_fronted)  # before the cleanup contexts connect


async def _all_fronted(app: web.Application) -> None:
    for route in app.router.routes():
        if not getattr(route.handler, _FRONTED, False):
            where = route.resource.canonical if route.resource is not None else ""
            raise RuntimeError(
                f"{route.method} {where} was added with app.router; declare it on a Routes "
                "table, or add it with runtime.front.add_route, so that it answers like every "
                "other route"
            )
