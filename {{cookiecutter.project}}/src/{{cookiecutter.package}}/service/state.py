"""The state that routes, event handlers and tasks share.

They all run on one event loop, so no lock is needed: code between two ``await``s runs alone.
Keep each read-modify-write free of ``await`` and it stays consistent.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from uuid import UUID

from aiohttp import web

from .models import AlertRaised, MeasurementRecorded, SensorStats, Summary

# Delivery is at least once, so a handler can see an event twice; ids seen recently are kept.
REMEMBERED_IDS = 10_000


@dataclass
class Running:
    """Running statistics of one sensor: updated in place, on the hot path of every event."""

    sensor: str
    count: int
    last: float
    minimum: float
    maximum: float
    mean: float

    def add(self, value: float) -> None:
        self.count += 1
        self.last = value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.mean += (value - self.mean) / self.count

    def as_model(self) -> SensorStats:
        return SensorStats.model_validate(self, from_attributes=True)


@dataclass
class Sensors:
    """Per-sensor statistics, the alerts waiting to be published, and the last summary."""

    stats: dict[str, Running] = field(default_factory=dict)
    alerts: asyncio.Queue[AlertRaised] = field(default_factory=asyncio.Queue)
    alerts_raised: int = 0
    summary: Summary | None = None
    _seen: OrderedDict[UUID, None] = field(default_factory=OrderedDict)

    def record(self, event: MeasurementRecorded) -> bool:
        """Add a measurement to its sensor's statistics; False if this event was seen already."""
        if event.id in self._seen:
            return False
        self._seen[event.id] = None
        if len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)
        running = self.stats.get(event.sensor)
        if running is None:
            value = event.value
            self.stats[event.sensor] = Running(event.sensor, 1, value, value, value, value)
        else:
            running.add(event.value)
        return True

    def summarize(self) -> Summary:
        """A summary of everything recorded so far; it becomes the current one."""
        self.summary = Summary(
            sensors=len(self.stats),
            measurements=sum(s.count for s in self.stats.values()),
            alerts=self.alerts_raised,
            made_at=datetime.now(UTC),
        )
        return self.summary


SENSORS = web.AppKey("sensors", Sensors)
