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
class Sensors:
    """Per-sensor statistics, the alerts waiting to be published, and the last summary."""

    stats: dict[str, SensorStats] = field(default_factory=dict)
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
        old = self.stats.get(event.sensor)
        if old is None:
            self.stats[event.sensor] = SensorStats(
                sensor=event.sensor,
                count=1,
                last=event.value,
                minimum=event.value,
                maximum=event.value,
                mean=event.value,
            )
        else:
            count = old.count + 1
            self.stats[event.sensor] = SensorStats(
                sensor=event.sensor,
                count=count,
                last=event.value,
                minimum=min(old.minimum, event.value),
                maximum=max(old.maximum, event.value),
                mean=old.mean + (event.value - old.mean) / count,
            )
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
