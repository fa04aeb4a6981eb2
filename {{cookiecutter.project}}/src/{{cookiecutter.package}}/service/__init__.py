"""The service's own code: edit these files, and replace the example with your service.

- ``routes.py``: the REST API (``routes``);
- ``events.py``: the events it listens to (``events``);
- ``tasks.py``: its background tasks (``tasks``);
- ``state.py``: the state they share; ``models.py``: the payloads;
- ``settings.py``: its own settings (``ServiceSettings``).

``app.py`` plugs these into the runtime: keep exporting ``routes``, ``events``, ``tasks`` and
``setup``, which puts the settings and the shared state into the app.
"""

from __future__ import annotations

from aiohttp import web

from .events import events
from .routes import routes
from .settings import SERVICE_SETTINGS, ServiceSettings
from .state import SENSORS, Sensors
from .tasks import tasks

__all__ = ["events", "routes", "setup", "tasks"]


def setup(app: web.Application, settings: ServiceSettings) -> None:
    """Give routes, event handlers and tasks their settings and the state they share."""
    app[SERVICE_SETTINGS] = settings
    app[SENSORS] = Sensors()
