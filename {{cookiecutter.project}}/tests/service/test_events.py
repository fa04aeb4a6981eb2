"""The example's event handler, called directly: no broker involved."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.service.events import on_measurement_recorded
from {{ cookiecutter.package }}.service.models import MeasurementRecorded
from {{ cookiecutter.package }}.service.state import SENSORS

from ..conftest import make_settings


def measurement(sensor: str, value: float) -> MeasurementRecorded:
    return MeasurementRecorded(
        id=uuid4(), sensor=sensor, value=value, recorded_at=datetime.now(UTC)
    )


async def test_handler_keeps_running_statistics() -> None:
    app = create_app(make_settings())
    for value in (10.0, 30.0, 20.0):
        await on_measurement_recorded(app, measurement("t1", value))
    stats = app[SENSORS].stats["t1"]
    assert (stats.count, stats.last, stats.minimum, stats.maximum, stats.mean) == (
        3,
        20.0,
        10.0,
        30.0,
        20.0,
    )


async def test_handler_counts_a_redelivered_event_once() -> None:
    app = create_app(make_settings())
    event = measurement("t1", 5.0)
    await on_measurement_recorded(app, event)
    await on_measurement_recorded(app, event)
    assert app[SENSORS].stats["t1"].count == 1


async def test_handler_queues_an_alert_at_the_threshold() -> None:
    app = create_app(make_settings(alert_threshold=50.0))
    await on_measurement_recorded(app, measurement("t1", 49.9))
    assert app[SENSORS].alerts.empty()
    hot = measurement("t1", 50.0)
    await on_measurement_recorded(app, hot)
    alert = app[SENSORS].alerts.get_nowait()
    assert (alert.measurement_id, alert.value, alert.threshold) == (hot.id, 50.0, 50.0)
    assert app[SENSORS].alerts_raised == 1
