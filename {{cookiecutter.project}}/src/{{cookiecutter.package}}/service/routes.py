"""The REST API of the service."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from aiohttp import web

from ..runtime.broker import PUBLISHER
from ..runtime.http import HttpError, Routes
from .models import (
    Accepted,
    MeasurementIn,
    MeasurementRecorded,
    SensorFilter,
    SensorList,
    SensorPath,
    SensorStats,
    Summary,
)
from .state import SENSORS

routes = Routes()


@routes.post(
    "/measurements",
    body=MeasurementIn,
    response=Accepted,
    status=202,
    summary="Record a measurement: publishes measurement.recorded",
    errors=(503,),
)
async def record_measurement(request: web.Request, body: MeasurementIn) -> Accepted:
    event = MeasurementRecorded(
        id=uuid4(), sensor=body.sensor, value=body.value, recorded_at=datetime.now(UTC)
    )
    # 202: the event is safely with the broker; the statistics follow when it is consumed.
    await request.app[PUBLISHER].publish("measurement.recorded", event)
    return Accepted(id=event.id)


@routes.get("/sensors", query=SensorFilter, response=SensorList, summary="Statistics of sensors")
async def list_sensors(request: web.Request, query: SensorFilter) -> SensorList:
    stats = request.app[SENSORS].stats
    names = sorted(name for name in stats if name.startswith(query.prefix))[: query.limit]
    return SensorList(sensors=[stats[name].as_model() for name in names])


@routes.get(
    "/sensors/{sensor}",
    path=SensorPath,
    response=SensorStats,
    summary="Statistics of one sensor",
    errors=(404,),
)
async def get_sensor(request: web.Request, path: SensorPath) -> SensorStats:
    stats = request.app[SENSORS].stats.get(path.sensor)
    if stats is None:
        raise HttpError(404, f"no measurement of sensor {path.sensor!r} has been recorded")
    return stats.as_model()


@routes.get(
    "/summary", response=Summary, summary="The last summary of the periodic task", errors=(404,)
)
async def get_summary(request: web.Request) -> Summary:
    summary = request.app[SENSORS].summary
    if summary is None:
        raise HttpError(404, "no summary has been made yet")
    return summary
