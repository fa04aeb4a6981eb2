"""The service's own code: edit these files, and replace the example with your service.

- ``routes.py``: the REST API (``routes``);
- ``events.py``: the events it listens to (``events``);
- ``tasks.py``: its background tasks (``tasks``);
- ``state.py``: the state they share; ``models.py``: the payloads.

``setup`` puts the shared state into the app; ``app.py`` does the rest.
"""

from __future__ import annotations

from aiohttp import web

from .events import events
from .routes import routes
from .state import SENSORS, Sensors
from .tasks import tasks

__all__ = ["events", "routes", "setup", "tasks"]


def setup(app: web.Application) -> None:
    """Create the state that routes, event handlers and tasks share."""
    app[SENSORS] = Sensors()
