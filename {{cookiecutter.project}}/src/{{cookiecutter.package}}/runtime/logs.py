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
LIBRARIES = ("aio_pika", "aiormq")


class LibraryNoise(logging.Filter):
    """Shows aio-pika's and aiormq's records as DEBUG, whatever level they were logged at.

    During a broker outage those libraries log an ERROR or WARNING for every failed attempt,
    and operators page on ERROR. The runtime tells an outage in its own words instead: one
    WARNING when RabbitMQ is lost, a reminder while it stays away, one INFO when it is back.
    """

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.partition(".")[0] not in LIBRARIES:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self.level <= logging.DEBUG


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
    handler.addFilter(LibraryNoise(logging.getLevelName(level)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for library in LIBRARIES:
        # They log every frame at DEBUG; what they say at WARNING and above is shown as DEBUG.
        logging.getLogger(library).setLevel(logging.WARNING)
