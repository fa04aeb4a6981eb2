"""The events the service listens to. Each pattern becomes a binding of the service's queue.

A handler that raises is retried, then dead-lettered; one that returns gets its message acked.
Delivery is at least once: make handlers idempotent (here, by the event id).
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..runtime.messaging import EventHandlers
from .models import AlertRaised, MeasurementRecorded
from .settings import SERVICE_SETTINGS
from .state import SENSORS

log = logging.getLogger(__name__)

events = EventHandlers()


@events.subscribe("measurement.recorded", MeasurementRecorded)
async def on_measurement_recorded(app: web.Application, event: MeasurementRecorded) -> None:
    sensors = app[SENSORS]
    if not sensors.record(event):
        log.info("measurement %s was delivered again; already counted", event.id)
        return
    threshold = app[SERVICE_SETTINGS].alert_threshold
    if event.value >= threshold:
        sensors.alerts_raised += 1
        sensors.alerts.put_nowait(
            AlertRaised(
                measurement_id=event.id, sensor=event.sensor, value=event.value, threshold=threshold
            )
        )
