"""The payloads of the example: request bodies, responses and events, all validated by pydantic."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

SENSOR_NAME = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class MeasurementIn(BaseModel):
    """Body of ``POST /measurements``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    sensor: str = SENSOR_NAME
    value: float


class Accepted(BaseModel):
    """Answer to ``POST /measurements``: the id of the event it published."""

    id: UUID


class MeasurementRecorded(BaseModel):
    """Event ``measurement.recorded``: one measurement, published by ``POST /measurements``."""

    model_config = ConfigDict(allow_inf_nan=False)

    id: UUID
    sensor: str = SENSOR_NAME
    value: float
    recorded_at: datetime


class SensorPath(BaseModel):
    """Path parameters of ``GET /sensors/{sensor}``."""

    sensor: str = SENSOR_NAME


class SensorFilter(BaseModel):
    """Query parameters of ``GET /sensors``."""

    prefix: str = Field(
        default="", max_length=64, description="only sensors whose name starts with this"
    )
    limit: int = Field(default=100, ge=1, le=1000, description="at most this many, by name")


class SensorStats(BaseModel):
    """What the service knows about one sensor, built from ``measurement.recorded`` events."""

    sensor: str
    count: int
    last: float
    minimum: float
    maximum: float
    mean: float


class SensorList(BaseModel):
    sensors: list[SensorStats]


class AlertRaised(BaseModel):
    """Event ``sensor.alert``: a measurement at or above the alert threshold."""

    measurement_id: UUID
    sensor: str
    value: float
    threshold: float


class Summary(BaseModel):
    """Event ``sensors.summary``, published by the periodic task; also ``GET /summary``."""

    sensors: int
    measurements: int
    alerts: int
    made_at: datetime
