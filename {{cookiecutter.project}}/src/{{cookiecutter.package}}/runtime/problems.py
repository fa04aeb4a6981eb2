"""Errors as the client sees them: ``application/problem+json`` (RFC 9457) for every failure.

``problem_for`` turns what a handler raises into a problem response: an ``HttpError``
with its status, aiohttp's own errors (404, 405, 413 ...) with theirs, a ``PublishError`` as
503, anything else as 500 with the traceback in the log, never in the response. Example use::

    raise HttpError(404, "no measurement of sensor 'boiler' has been recorded")
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from aiohttp import hdrs, web
from pydantic import BaseModel

from .messaging import PublishError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpError(Exception):
    """An error to send to the client as problem JSON: ``raise HttpError(404, "no sensor 'x'")``."""

    def __init__(self, status: int, detail: str, errors: list[dict[str, Any]] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors


class ProblemDetail(BaseModel):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    errors: list[dict[str, Any]] | None = None


def problem_response(
    status: int,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> web.Response:
    problem = ProblemDetail(
        title=HTTPStatus(status).phrase, status=status, detail=detail, errors=errors
    )
    return web.Response(
        body=problem.model_dump_json(exclude_none=True).encode(),
        status=status,
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def problem_for(request: web.Request, exc: Exception) -> web.Response:
    """The problem response to what a handler raised. An ``HTTPException`` here is an error,
    400 or above: ``front.py`` lets a redirect through before it gets this far."""
    if isinstance(exc, HttpError):
        return problem_response(exc.status, exc.detail, errors=exc.errors)
    if isinstance(exc, web.HTTPException):
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k not in (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH)
        }
        text = exc.text or ""
        detail = exc.reason if text in ("", f"{exc.status}: {exc.reason}") else text
        return problem_response(exc.status, detail, headers)
    if isinstance(exc, PublishError):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return problem_response(503, f"the event could not be published: {exc}")
    log.error("unhandled error in %s %s", request.method, request.path, exc_info=exc)
    return problem_response(500, "internal error; the service log has the details")
