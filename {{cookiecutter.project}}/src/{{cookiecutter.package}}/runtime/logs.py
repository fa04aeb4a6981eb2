"""Logging set up once at start: readable text for people, one JSON object a line for collectors.

Example use::

    configure_logging("INFO", "json")
    logging.getLogger(__name__).info("started")  # {"level": "INFO", ..., "time": "..."}

Each line carries the correlation id of the request or message being handled
(``correlation.py``); in JSON, so do the fields given as ``extra=``.
"""

from __future__ import annotations

import logging
import sys

from pythonjsonlogger.json import JsonFormatter

from .correlation import LogField

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


class TextFormatter(logging.Formatter):
    """The text format, with ``[correlation id]`` after the logger's name while there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s%(correlation)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        correlation_id = getattr(record, "correlation_id", None)
        record.correlation = f" [{correlation_id}]" if correlation_id else ""
        return super().formatMessage(record)


def json_formatter() -> logging.Formatter:
    """One JSON object a line: time, level, logger, correlation id, message, then any
    ``extra=`` fields, and the traceback as a field rather than extra lines."""
    return JsonFormatter(
        "{levelname}{name}{correlation_id}{message}",
        style="{",
        timestamp="time",
        rename_fields={"levelname": "level", "name": "logger", "exc_info": "exception"},
        json_ensure_ascii=False,
    )


def configure_logging(level: str, fmt: str) -> None:
    """Send the log to stderr at ``level`` in ``fmt`` (``text`` or ``json``)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter() if fmt == "json" else TextFormatter())
    handler.addFilter(LibraryNoise(logging.getLevelName(level)))
    handler.addFilter(LogField())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for library in LIBRARIES:
        # They log every frame at DEBUG; what they say at WARNING and above is shown as DEBUG.
        logging.getLogger(library).setLevel(logging.WARNING)
