"""Typed path and query parameters: a route declares a pydantic model of each, the request's
strings are validated into it before the handler runs, and OpenAPI documents each field with
its type and constraints. Example use::

    class SensorPath(BaseModel):
        sensor: str = Field(pattern=r"^[a-z]+$")

    class Page(BaseModel):
        model_config = ConfigDict(extra="forbid")
        limit: int = Field(default=100, ge=1, le=1000)

    @routes.get("/sensors/{sensor}", path=SensorPath, query=Page, response=SensorStats)
    async def get_sensor(request: web.Request, path: SensorPath, query: Page) -> SensorStats: ...

Parameters arrive as text, so they are validated in pydantic's lax mode, which reads ``"12"`` as
the number 12; a query field whose type is a list takes every value of a repeated key.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any

from multidict import MultiDictProxy
from pydantic import BaseModel, ValidationError

from .problems import HttpError

PLACEHOLDER = re.compile(r"\{([^}:]+)(?::[^}]*)?\}")


def placeholders(route_path: str) -> list[str]:
    """The names of ``route_path``'s variable parts: ``/a/{b}/{c:\\d+}`` has b and c."""
    return PLACEHOLDER.findall(route_path)


class ParamReader:
    """Validates one kind of parameters (``where``: path or query) as ``model``."""

    def __init__(self, model: type[BaseModel], where: str) -> None:
        self.model = model
        self.where = where
        self._validate = model.__pydantic_validator__.validate_python
        properties = model.model_json_schema()["properties"]
        self._lists = {
            field.alias or name
            for name, field in model.model_fields.items()
            if _is_array(properties.get(field.alias or name, {}))
        }

    def __call__(self, values: Mapping[str, str] | MultiDictProxy[str]) -> BaseModel:
        """``values`` as the model; ``HttpError`` 422 naming the fields at fault."""
        data: Mapping[str, Any] = values
        if isinstance(values, MultiDictProxy):  # a query may repeat a name: a list, then
            data = {}
            for key in dict.fromkeys(values.keys()):
                every = values.getall(key)
                data[key] = every if key in self._lists or len(every) > 1 else every[0]
        try:
            # The model's validator itself: model_validate adds a Python call per request.
            return self._validate(data, strict=False)  # type: ignore[no-any-return]
        except ValidationError as exc:
            raise HttpError(
                422,
                f"the {self.where} parameters do not match the schema",
                field_errors(exc, self.where),
            ) from None


def field_errors(exc: ValidationError, where: str | None = None) -> list[dict[str, Any]]:
    """The errors of ``exc`` as a problem's ``errors``: where, what and why, never the input."""
    prefix = [where] if where else []
    return [
        {"loc": [*prefix, *error["loc"]], "msg": error["msg"], "type": error["type"]}
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


def check_placeholders(route_path: str, model: type[BaseModel] | None) -> None:
    """Refuse a path model whose fields are not exactly the path's variable parts."""
    if model is None:
        return
    fields = {field.alias or name for name, field in model.model_fields.items()}
    if fields != set(placeholders(route_path)):
        raise ValueError(
            f"{route_path}: path={model.__name__} has the fields {sorted(fields)}, but the path "
            f"has {sorted(placeholders(route_path))}"
        )


def check_handler(
    fn: Callable[..., Any],
    body: type[BaseModel] | None,
    path: type[BaseModel] | None,
    query: type[BaseModel] | None,
) -> None:
    """Refuse a handler that could not be called as declared: ``(request[, body])`` and then
    ``path=`` and ``query=`` if the route declares those, with those models if annotated."""
    parameters = list(inspect.signature(fn).parameters.values())
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    wanted = 2 if body is not None else 1
    declared = {name: model for name, model in (("path", path), ("query", query)) if model}
    names = {p.name for p in parameters}
    problems = []
    if len(positional) < wanted:
        problems.append("(request, body)" if body is not None else "(request)")
    problems += [f"a parameter {n}: {m.__name__}" for n, m in declared.items() if n not in names]
    stray = [
        p.name
        for p in parameters[wanted:]
        if p.default is p.empty
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and p.name not in declared
    ]
    if stray:
        problems.append(f"no parameter the route does not fill ({', '.join(stray)})")
    hints = _hints(fn)
    for name, model in declared.items():
        hint = hints.get(name)
        if isinstance(hint, type) and not issubclass(model, hint):
            problems.append(f"{name}: {model.__name__}, not {hint.__name__}")
    if problems:
        raise TypeError(f"handler {fn.__name__} must take " + "; ".join(problems))


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # say, a model defined where the hints cannot see it: no check then
        return {}


def _is_array(schema: dict[str, Any]) -> bool:
    options = [schema, *schema.get("anyOf", [])]
    return any(option.get("type") == "array" for option in options)
