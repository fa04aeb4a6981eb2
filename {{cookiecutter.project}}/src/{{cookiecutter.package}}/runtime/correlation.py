"""Correlation ids: one id follows a piece of work through REST, AMQP and the log.

A request brings its id in ``X-Request-ID`` (or gets a new one) and gets it back in the
response. Whatever the request publishes carries it as the AMQP ``correlation_id``, and so do
the retry and dead-letter copies of the message. The handler of that message runs with the
same id, and so does every log line written meanwhile. Example use::

    CORRELATION_ID.get()  # in a route, a handler or a task: the id of the work at hand

A value that is not a plain id (too long, not ASCII, spaces, a newline) is replaced, never
passed on: it would end up in other services' logs.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
from collections.abc import Callable
from contextvars import ContextVar
from typing import ClassVar

from aiohttp import web

HEADER = "X-Request-ID"
PLAIN = re.compile(r"[A-Za-z0-9._:+=/-]{1,128}")

CORRELATION_ID: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_PROCESS = secrets.token_hex(8)
_COUNT = itertools.count()


def new_id() -> str:
    """A new id, unique across processes: 64 random bits of this process, then a count (32 hex
    digits in all, like a UUID's). Cheaper than a UUID, which reads the OS's random source."""
    return f"{_PROCESS}{next(_COUNT):016x}"


def plain(value: object) -> str | None:
    """``value`` if it is a plain id, else None."""
    return value if isinstance(value, str) and PLAIN.fullmatch(value) else None


def begin(request: web.Request) -> str:
    """Run the rest of ``request`` under its ``X-Request-ID``, or a new id; return the id, which
    goes back to the client in the same header."""
    correlation_id = plain(request.headers.get(HEADER)) or new_id()
    # Not reset afterwards: aiohttp runs each request in a task of its own, so the id cannot
    # leak into another request, and its access-log line, written later, names it too.
    CORRELATION_ID.set(correlation_id)
    return correlation_id


class LogField(logging.Filter):
    """Puts the correlation id on every record, as ``correlation_id`` (None outside work), and
    while tracing is on, the current span's ``trace_id`` and ``span_id``."""

    # Set by ``spans.Tracing``, so that nothing of OpenTelemetry is imported while it is off.
    trace_ids: ClassVar[Callable[[], tuple[str, str] | None] | None] = None

    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = CORRELATION_ID.get()
        if LogField.trace_ids is not None and (ids := LogField.trace_ids()) is not None:
            record.trace_id, record.span_id = ids
        return True
