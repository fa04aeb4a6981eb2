"""Liveness and readiness, for Kubernetes probes, the Docker HEALTHCHECK and load balancers.

``GET /health/live`` answers 200 while the event loop runs. ``GET /health/ready`` answers 200 when
the broker is connected, the service's consumer is registered, RabbitMQ confirmed the last
publish (or none failed lately) and no background task has been failing for longer than
``task_unhealthy_after``; otherwise 503, with the reasons. Example use::

    http.setup(app, [routes, health.routes], ...)
    # curl localhost:8080/health/ready -> {"status": "ready", "reasons": [], ...}
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from .broker import BROKER
from .http import Routes
from .tasks import SUPERVISOR

routes = Routes()


class Liveness(BaseModel):
    status: Literal["alive"] = "alive"


class Readiness(BaseModel):
    status: Literal["ready", "unready"]
    reasons: list[str]
    broker: dict[str, Any]
    tasks: dict[str, dict[str, Any]]


@routes.get("/health/live", response=Liveness, summary="Whether the process is alive")
async def live(request: web.Request) -> Liveness:
    return Liveness()


@routes.get(
    "/health/ready",
    response=Readiness,
    summary="Whether the service can do its work: 200 if so, 503 with the reasons if not",
    errors=(503,),
)
async def ready(request: web.Request) -> web.Response:
    broker = await request.app[BROKER].status()
    supervisor = request.app[SUPERVISOR]
    reasons = []
    if not (broker.connected and broker.consuming and broker.confirming):
        reasons.append(broker.detail)
    for name in supervisor.failing():
        state = supervisor.states[name]
        reasons.append(f"task {name} keeps failing: {state.last_error}")
    report = Readiness(
        status="unready" if reasons else "ready",
        reasons=reasons,
        broker={
            "connected": broker.connected,
            "consuming": broker.consuming,
            "confirming": broker.confirming,
            "detail": broker.detail,
        },
        tasks={name: state.as_json() for name, state in supervisor.states.items()},
    )
    return web.Response(
        body=report.model_dump_json().encode(),
        status=503 if reasons else 200,
        content_type="application/json",
    )
