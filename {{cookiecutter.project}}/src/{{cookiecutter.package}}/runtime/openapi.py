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
from .params import placeholders


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
    errors: tuple[int, ...] = ()
    path_params: type[BaseModel] | None = None
    query_params: type[BaseModel] | None = None


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
        for model in (op.body, op.path_params, op.query_params):
            if model is not None:
                models.append((model, "validation"))
    refs, schemas = models_json_schema(models, ref_template="#/components/schemas/{model}")
    components = schemas.get("$defs", {})
    # A parameter model is spelled out in its parameters; only the types it uses stay.
    parameter_models = {
        str(refs[(m, "validation")]["$ref"]).rsplit("/", 1)[1]
        for op in operations
        for m in (op.path_params, op.query_params)
        if m is not None
    }
    parameter_schemas = {name: components[name] for name in parameter_models}
    used = {str(ref).rsplit("/", 1)[1] for ref in _refs(components, skip=parameter_models)}
    for name in parameter_models - used:
        del components[name]

    def parameters(model: type[BaseModel] | None, where: str) -> list[dict[str, Any]]:
        if model is None:
            return []
        schema = parameter_schemas[str(refs[(model, "validation")]["$ref"]).rsplit("/", 1)[1]]
        required = set(schema.get("required", []))
        return [
            {"name": name, "in": where, "required": where == "path" or name in required,
             "schema": field}
            for name, field in schema["properties"].items()
        ]  # fmt: skip

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
        typed = parameters(op.path_params, "path")
        untyped = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in placeholders(op.path)
            if op.path_params is None
        ]
        if every := typed + untyped + parameters(op.query_params, "query"):
            entry["parameters"] = every
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
        "components": {"schemas": components},
    }


def _refs(schemas: dict[str, Any], skip: set[str]) -> list[str]:
    """Every ``$ref`` in ``schemas``, but for those under the names in ``skip``."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                found.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({name: schema for name, schema in schemas.items() if name not in skip})
    return found
