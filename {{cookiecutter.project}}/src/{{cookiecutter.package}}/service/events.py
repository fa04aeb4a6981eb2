"""The service's events: those it publishes, and those it listens to.

Publishing an event not declared here raises ``UndeclaredEventError``. Each handler's pattern
becomes a binding of the service's queue. A handler that raises is retried, then dead-lettered;
one that returns gets its message acked. Delivery is at least once: make handlers idempotent
(here, by the event id). ``GET /asyncapi.json`` documents all of it.
"""

from __future__ import annotations

import logging

from aiohttp import web

from ..runtime.messaging import EventHandlers
from .models import AlertRaised, MeasurementRecorded, Summary
from .settings import SERVICE_SETTINGS
from .state import SENSORS

log = logging.getLogger(__name__)

events = EventHandlers()

events.publishes("measurement.recorded", MeasurementRecorded, "A measurement was accepted")
events.publishes("sensor.alert", AlertRaised, "A measurement reached the alert threshold")
events.publishes("sensors.summary", Summary, "The periodic summary of all sensors")


@events.subscribe("measurement.recorded", MeasurementRecorded)
async def on_measurement_recorded(app: web.Application, event: MeasurementRecorded) -> None:
    """Count the measurement once, and queue an alert if it reaches the threshold."""
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
