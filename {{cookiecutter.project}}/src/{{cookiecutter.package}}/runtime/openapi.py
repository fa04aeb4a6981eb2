"""The OpenAPI 3.1 document of the REST API, built from the route declarations themselves, so it
cannot drift from what the service serves. ``http.setup`` serves it at ``GET /openapi.json``.
Example use::

    document = openapi_document(
        routes.operations, "my-service", "1.0.0", "", problem=ProblemDetail, problem_media=MEDIA
    )
    document["paths"]["/measurements"]["post"]["requestBody"]  # the body model's schema
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import TEMPLATE_VERSION


@dataclass(frozen=True)
class Operation:
    """One route, as the OpenAPI document describes it."""

    method: str
    path: str
    name: str
    summary: str
    status: int
    body: type[BaseModel] | None
    response: type[BaseModel]
    errors: tuple[int, ...]


def openapi_document(
    operations: list[Operation],
    title: str,
    version: str,
    description: str,
    *,
    problem: type[BaseModel],
    problem_media: str,
) -> dict[str, Any]:
    """An OpenAPI 3.1 document for ``operations``, with the pydantic models as schemas; each
    error status an operation declares answers a ``problem`` model as ``problem_media``."""
    models: list[tuple[type[BaseModel], Any]] = [(problem, "serialization")]
    for op in operations:
        models.append((op.response, "serialization"))
        if op.body is not None:
            models.append((op.body, "validation"))
    _, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")

    def content(model: type[BaseModel], media: str = "application/json") -> dict[str, Any]:
        return {media: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}}

    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        responses: dict[str, Any] = {
            str(op.status): {
                "description": HTTPStatus(op.status).phrase,
                "content": content(op.response),
            }
        }
        for status in sorted(set(op.errors)):
            responses[str(status)] = {
                "description": HTTPStatus(status).phrase,
                "content": content(problem, problem_media),
            }
        entry: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "responses": responses,
        }
        if op.body is not None:
            entry["requestBody"] = {"required": True, "content": content(op.body)}
        parameters = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in op.path.split("/")
            if part.startswith("{") and part.endswith("}")
        ]
        if parameters:
            entry["parameters"] = parameters
        paths.setdefault(op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": description,
            "x-template-version": TEMPLATE_VERSION,
        },
        "paths": paths,
        "components": {"schemas": schemas.get("$defs", {})},
    }
