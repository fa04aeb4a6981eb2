"""The service's own settings: yours to edit. Example use::

    class ServiceSettings(BaseModel):
        report_to: str = Field(default="ops", description="who reads the reports")

    app[SERVICE_SETTINGS].report_to  # from --report-to, <ENV_PREFIX>REPORT_TO or the default

Each field becomes an environment variable and a flag, exactly like the runtime's; ``settings.py``
joins the two classes into one, so a field here must not reuse a runtime setting's name. Leave
``model_config`` to the runtime's settings, which it shares.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field


class ServiceSettings(BaseModel):
    """Settings of the example: the sensor summary and alerts."""

    summary_interval: float = Field(
        default=60.0, gt=0, description="seconds between two sensor summaries"
    )
    alert_threshold: float = Field(
        default=100.0, description="a measurement at or above this raises an alert event"
    )


SERVICE_SETTINGS = web.AppKey("service_settings", ServiceSettings)
