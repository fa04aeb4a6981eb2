"""REST plumbing: typed routes, JSON errors for every failure, and the OpenAPI document.

Routes declare the pydantic models they read and return; the body is validated before the
handler runs and the returned model is sent as JSON. Example use::

    routes = Routes()

    @routes.post("/measurements", body=MeasurementIn, response=Accepted, status=202)
    async def record(request: web.Request, body: MeasurementIn) -> Accepted: ...

Every error reaches the client as ``application/problem+json`` (RFC 9457): malformed JSON is 400,
a body that does not fit the model is 422 with the fields at fault, a body over
``max_body_size`` is 413, an unknown route is 404, a publish the broker did not confirm is 503,
and anything unexpected is 500 with the traceback in the log, never in the response. Validation
is strict, so what the OpenAPI document says is what is accepted: ``"12"`` or ``false`` is not a
number.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, TypeVar, overload

from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from .messaging import PublishError, validate
from .openapi import Operation, openapi_document

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
B = TypeVar("B", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
Reply = BaseModel | web.StreamResponse
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GetHandler = Callable[[web.Request], Awaitable[R | web.StreamResponse]]
BodyHandler = Callable[[web.Request, B], Awaitable[R | web.StreamResponse]]


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


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every exception a handler raises into a problem JSON response."""
    try:
        return await handler(request)
    except HttpError as exc:
        return problem_response(exc.status, exc.detail, errors=exc.errors)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are not errors
        headers = {
            k: v
            for k, v in exc.headers.items()
            if k not in (hdrs.CONTENT_TYPE, hdrs.CONTENT_LENGTH)
        }
        text = exc.text or ""
        detail = exc.reason if text in ("", f"{exc.status}: {exc.reason}") else text
        return problem_response(exc.status, detail, headers)
    except PublishError as exc:
        log.warning("%s %s: %s", request.method, request.path, exc)
        return problem_response(503, f"the event could not be published: {exc}")
    except Exception:
        log.exception("unhandled error in %s %s", request.method, request.path)
        return problem_response(500, "internal error; the service log has the details")


@dataclass
class Routes:
    """A table of typed routes; ``setup`` adds them to the app.

    ``get`` and ``post`` are shorthands of ``route``, which declares any method::

        @routes.route("PUT", "/sensors/{sensor}", body=SensorIn, response=SensorStats)
        async def replace_sensor(request: web.Request, body: SensorIn) -> SensorStats: ...

    A route declared after ``setup`` raises ``RuntimeError``, since it would never be served.
    """

    operations: list[Operation] = field(default_factory=list)
    table: web.RouteTableDef = field(default_factory=web.RouteTableDef)
    frozen: bool = False

    def get(
        self, path: str, *, response: type[R], summary: str = "", errors: tuple[int, ...] = ()
    ) -> Callable[[GetHandler[R]], GetHandler[R]]:
        """Declare a GET route whose handler returns a ``response`` model."""
        return self.route("GET", path, response=response, summary=summary, errors=errors)

    def post(
        self,
        path: str,
        *,
        body: type[B],
        response: type[R],
        status: int = 200,
        summary: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[BodyHandler[B, R]], BodyHandler[B, R]]:
        """Declare a POST route: the body is validated as ``body`` before the handler runs."""
        return self.route(
            "POST", path, body=body, response=response, status=status, summary=summary,
            errors=errors,
        )  # fmt: skip

    @overload
    def route(
        self,
        method: str,
        path: str,
        *,
        body: None = None,
        response: type[R],
        status: int = 200,
        summary: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[GetHandler[R]], GetHandler[R]]: ...

    @overload
    def route(
        self,
        method: str,
        path: str,
        *,
        body: type[B],
        response: type[R],
        status: int = 200,
        summary: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[BodyHandler[B, R]], BodyHandler[B, R]]: ...

    def route(
        self,
        method: str,
        path: str,
        *,
        body: type[BaseModel] | None = None,
        response: type[BaseModel],
        status: int = 200,
        summary: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[Any], Any]:
        """Declare a ``method`` route. With ``body``, the request body is validated as that
        model and passed to the handler; a bad body is answered 400, 413, 415 or 422 without
        calling it. The handler returns a ``response`` model, sent with ``status``."""
        if self.frozen:
            raise RuntimeError(
                f"{method} {path} was declared after the app was built, so it would never be "
                "served; declare routes at import time, before create_app"
            )
        if body is not None:
            errors = (400, 413, 415, 422, *errors)

        def register(fn: Callable[..., Awaitable[Reply]]) -> Callable[..., Awaitable[Reply]]:
            doc = summary or (fn.__doc__ or "").strip().split("\n")[0]
            self.operations.append(
                Operation(method, path, fn.__name__, doc, status, body, response, errors)
            )

            async def endpoint(request: web.Request) -> web.StreamResponse:
                if body is None:
                    return _reply(await fn(request), status)
                return _reply(await fn(request, await read_body(request, body)), status)

            self.table.route(method, path, name=fn.__name__)(endpoint)
            return fn

        return register


async def read_body(request: web.Request, model: type[B]) -> B:
    """The request body validated strictly as ``model`` (see ``messaging.validate``); raise
    ``HttpError`` 400, 413, 415 or 422."""
    declared = request.headers.get(hdrs.CONTENT_TYPE)
    if declared and not (
        request.content_type == "application/json" or request.content_type.endswith("+json")
    ):
        raise HttpError(415, f"send the body as application/json, not {request.content_type}")
    raw = await request.read()  # raises 413 past the app's client_max_size
    try:
        return validate(model, raw)
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False, include_context=False)
        if any(error["type"] == "json_invalid" for error in errors):
            raise HttpError(400, f"the body is not valid JSON: {errors[0]['msg']}") from None
        fields = [
            {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
            for error in errors
        ]
        raise HttpError(422, "the body does not match the schema", errors=fields) from None


def _reply(result: Reply, status: int) -> web.StreamResponse:
    if isinstance(result, web.StreamResponse):
        return result
    return web.Response(
        body=result.model_dump_json().encode(), status=status, content_type="application/json"
    )


def setup(
    app: web.Application, tables: list[Routes], title: str, version: str, description: str
) -> None:
    """Add the routes of ``tables`` and ``GET /openapi.json`` that describes them all."""
    operations = [operation for table in tables for operation in table.operations]
    document = openapi_document(
        operations, title, version, description, problem=ProblemDetail, problem_media=PROBLEM_JSON
    )
    body = json.dumps(document).encode()

    async def openapi(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    for table in tables:
        table.frozen = True
        app.router.add_routes(table.table)
    app.router.add_get("/openapi.json", openapi, name="openapi")
