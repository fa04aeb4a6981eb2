"""Logging set up once at start: readable text for people, one JSON object a line for collectors.

Example use::

    configure_logging("INFO", "json")
    logging.getLogger(__name__).info("started")  # {"time": "...", "level": "INFO", ...}
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the traceback as a field rather than extra lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, fmt: str) -> None:
    """Send the log to stderr at ``level`` in ``fmt`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aio-pika and aiormq log every frame at DEBUG: keep them at WARNING or above.
    logging.getLogger("aio_pika").setLevel(max(logging.getLevelName(level), logging.WARNING))
    logging.getLogger("aiormq").setLevel(max(logging.getLevelName(level), logging.WARNING))
