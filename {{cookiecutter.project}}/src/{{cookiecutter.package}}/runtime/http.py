"""REST plumbing: typed routes and the OpenAPI document that describes them.

Routes declare the pydantic models they read and return; the body, path and query parameters
(``params.py``) are validated before the handler runs and the returned model is sent as JSON.
Example use::

    routes = Routes()

    @routes.post("/measurements", body=MeasurementIn, response=Accepted, status=202)
    async def record(request: web.Request, body: MeasurementIn) -> Accepted: ...

Every error reaches the client as ``application/problem+json`` (``problems.py``): malformed
JSON is 400, a body or parameter that does not fit its model is 422 with the fields at fault, a
body over ``max_body_size`` is 413, an unknown route is 404. Body validation is strict, so what
the OpenAPI document says is what is accepted: ``"12"`` or ``false`` is not a number.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from . import front
from .messaging import summary_of, validate
from .openapi import Operation, openapi_document
from .params import ParamReader, check_handler, check_placeholders, field_errors
from .problems import PROBLEM_JSON, Handler, HttpError, ProblemDetail

__all__ = ["HttpError", "Routes", "read_body", "setup"]

B = TypeVar("B", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)
Reply = BaseModel | web.StreamResponse
# Checked at import by ``params.check_handler``: (request[, body][, path=][, query=]).
RouteHandler = Callable[..., Awaitable[R | web.StreamResponse]]


@dataclass
class Routes:
    """A table of typed routes; ``setup`` adds them to the app.

    ``get`` and ``post`` are shorthands of ``route``, which declares any method. A route may
    declare models of its path and query parameters; the handler gets them as ``path=`` and
    ``query=``, validated, after the body (if any)::

        @routes.route("PUT", "/sensors/{sensor}", body=SensorIn, path=SensorPath, response=Stats)
        async def replace(request: web.Request, body: SensorIn, path: SensorPath) -> Stats: ...

    A handler whose parameters do not fit its declaration raises ``TypeError`` at import, and a
    route declared after ``setup`` raises ``RuntimeError``, since it would never be served.
    """

    operations: list[Operation] = field(default_factory=list)
    # (method, path, handler, name): what ``setup`` adds to the app, wrapped by ``front.py``
    endpoints: list[tuple[str, str, Handler, str]] = field(default_factory=list)
    frozen: bool = False

    def get(
        self,
        route_path: str,
        *,
        response: type[R],
        path: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        summary: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[RouteHandler[R]], RouteHandler[R]]:
        """Declare a GET route whose handler returns a ``response`` model."""
        return self.route(
            "GET", route_path, response=response, path=path, query=query, summary=summary,
            errors=errors,
        )  # fmt: skip

    def post(
        self,
        route_path: str,
        *,
        body: type[BaseModel],
        response: type[R],
        path: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[RouteHandler[R]], RouteHandler[R]]:
        """Declare a POST route: the body is validated as ``body`` before the handler runs."""
        return self.route(
            "POST", route_path, body=body, response=response, path=path, query=query,
            status=status, summary=summary, errors=errors,
        )  # fmt: skip

    def route(
        self,
        method: str,
        route_path: str,
        *,
        response: type[R],
        body: type[BaseModel] | None = None,
        path: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        status: int = 200,
        summary: str = "",
        errors: tuple[int, ...] = (),
    ) -> Callable[[RouteHandler[R]], RouteHandler[R]]:
        """Declare a ``method`` route. With ``body``, the request body is validated as that
        model and passed to the handler; a bad body is answered 400, 413, 415 or 422 without
        calling it. ``path`` and ``query`` models validate the parameters (422 if they do not
        fit). The handler returns a ``response`` model, sent with ``status``."""
        if self.frozen:
            raise RuntimeError(
                f"{method} {route_path} was declared after the app was built, so it would never "
                "be served; declare routes at import time, before create_app"
            )
        if body is not None:
            errors = (400, 413, 415, 422, *errors)
        if path is not None or query is not None:
            errors = (422, *errors)
        check_placeholders(route_path, path)
        read_path = ParamReader(path, "path") if path is not None else None
        read_query = ParamReader(query, "query") if query is not None else None

        def register(fn: RouteHandler[R]) -> RouteHandler[R]:
            check_handler(fn, body, path, query)
            doc = summary or summary_of(fn)
            operation = Operation(method, route_path, fn.__name__, doc, status, body, response)
            self.operations.append(
                replace(operation, errors=errors, path_params=path, query_params=query)
            )

            async def endpoint(request: web.Request) -> web.StreamResponse:
                params: dict[str, BaseModel] = {}
                if read_path is not None:
                    params["path"] = read_path(request.match_info)
                if read_query is not None:
                    params["query"] = read_query(request.query)
                if body is None:
                    return _reply(await fn(request, **params), status)
                return _reply(await fn(request, await read_body(request, body), **params), status)

            self.endpoints.append((method, route_path, endpoint, fn.__name__))
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
        raise HttpError(422, "the body does not match the schema", field_errors(exc)) from None


def _reply(result: Reply, status: int) -> web.StreamResponse:
    if not isinstance(result, BaseModel):  # checked first: the common case, and cheaper
        return result
    # The serializer's bytes as they are: model_dump_json() would decode them to a str that
    # the response then encodes again.
    body = result.__pydantic_serializer__.to_json(result)
    return web.Response(body=body, status=status, content_type="application/json")


def setup(
    app: web.Application, tables: list[Routes], title: str, version: str, description: str
) -> None:
    """Add the routes of ``tables`` and ``GET /openapi.json`` that describes them all."""
    operations = [operation for table in tables for operation in table.operations]
    document = openapi_document(
        operations, title, version, description, problem=ProblemDetail, problem_media=PROBLEM_JSON
    )
    for table in tables:
        table.frozen = True
        for method, route_path, endpoint, name in table.endpoints:
            front.add_route(app, method, route_path, endpoint, name=name)
    serve_document(app, "/openapi.json", document)


def serve_document(app: web.Application, path: str, document: dict[str, Any]) -> None:
    """Serve ``document`` as JSON at ``GET path``, encoded once: it never changes."""
    body = json.dumps(document).encode()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    front.add_route(app, "GET", path, serve, name=path.strip("/").removesuffix(".json"))
