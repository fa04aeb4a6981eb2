"""The service's background tasks."""

from __future__ import annotations

from aiohttp import web

from ..runtime.broker import PUBLISHER
from ..runtime.tasks import Tasks
from .settings import SERVICE_SETTINGS
from .state import SENSORS

tasks = Tasks()


@tasks.periodic(every=lambda app: app[SERVICE_SETTINGS].summary_interval, jitter=1.0)
async def publish_summary(app: web.Application) -> None:
    """Summarise the sensors and publish ``sensors.summary``; ``GET /summary`` shows it."""
    summary = app[SENSORS].summarize()
    await app[PUBLISHER].publish("sensors.summary", summary)


@tasks.long_running
async def publish_alerts(app: web.Application) -> None:
    """Publish ``sensor.alert`` for each alert the event handler queued, one at a time."""
    alerts = app[SENSORS].alerts
    while True:
        alert = await alerts.get()
        try:
            await app[PUBLISHER].publish("sensor.alert", alert)
        except BaseException:
            alerts.put_nowait(alert)  # keep it for the next try (or the last log line)
            raise
