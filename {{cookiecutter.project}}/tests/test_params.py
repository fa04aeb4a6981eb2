"""Typed path and query parameters: validated before the handler runs, 422 with the field at
fault when they do not fit, and documented in OpenAPI with their types and bounds."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from {{ cookiecutter.package }}.runtime import front, http

from .conftest import Client


class ItemPath(BaseModel):
    shelf: str = Field(pattern=r"^[a-z]+$")
    number: int = Field(ge=1)


class Search(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)

    limit: int = Field(default=10, ge=1, le=100)
    tags: list[str] = Field(default_factory=list)
    above: float | None = None


class Found(BaseModel):
    shelf: str
    number: int
    limit: int
    tags: list[str]
    above: float | None


routes = http.Routes()


@routes.get("/shelves/{shelf}/items/{number}", path=ItemPath, query=Search, response=Found)
async def find(request: web.Request, path: ItemPath, query: Search) -> Found:
    return Found(**path.model_dump(), **query.model_dump())


@pytest.fixture
async def client(start: Callable[[web.Application], Awaitable[Client]]) -> Client:
    app = web.Application()
    front.setup(app, None, None)
    http.setup(app, [routes], "shelves", "1.0.0", "")
    front.close(app)
    return await start(app)


async def test_parameters_reach_the_handler_typed(client: Client) -> None:
    response = await client.get("/shelves/a/items/7?limit=5&tags=x&tags=y&above=1.5")
    assert response.status == 200
    assert await response.json() == {
        "shelf": "a", "number": 7, "limit": 5, "tags": ["x", "y"], "above": 1.5,
    }  # fmt: skip
    response = await client.get("/shelves/a/items/7")
    assert (await response.json())["limit"] == 10


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/shelves/A/items/7", ["path", "shelf"]),
        ("/shelves/a/items/seven", ["path", "number"]),
        ("/shelves/a/items/0", ["path", "number"]),
        ("/shelves/a/items/7?limit=1000", ["query", "limit"]),
        ("/shelves/a/items/7?limit=2.5", ["query", "limit"]),
        ("/shelves/a/items/7?limit=1&limit=2", ["query", "limit"]),  # one value, not two
        ("/shelves/a/items/7?above=nan", ["query", "above"]),
    ],
)
async def test_parameters_that_do_not_fit_are_422_naming_the_field(
    client: Client, url: str, loc: list[str]
) -> None:
    response = await client.get(url)
    assert response.status == 422
    body = await response.json()
    assert [error["loc"] for error in body["errors"]] == [loc]


async def test_openapi_documents_each_parameter_with_its_type(client: Client) -> None:
    document = await (await client.get("/openapi.json")).json()
    operation = document["paths"]["/shelves/{shelf}/items/{number}"]["get"]
    params: dict[tuple[str, str], dict[str, Any]] = {
        (p["in"], p["name"]): p for p in operation["parameters"]
    }
    assert set(params) == {
        ("path", "shelf"), ("path", "number"),
        ("query", "limit"), ("query", "tags"), ("query", "above"),
    }  # fmt: skip
    assert params["path", "number"]["schema"]["type"] == "integer"
    assert params["path", "number"]["required"] is True
    limit = params["query", "limit"]
    assert (limit["required"], limit["schema"]["minimum"], limit["schema"]["maximum"]) == (
        False,
        1,
        100,
    )
    assert params["query", "tags"]["schema"]["type"] == "array"
    assert "422" in operation["responses"]
    # The parameter models are spelled out as parameters, not left behind as components.
    assert not {"ItemPath", "Search"} & set(document["components"]["schemas"])


def test_a_path_model_must_name_the_paths_parts() -> None:
    with pytest.raises(ValueError, match=r"has the fields \['number', 'shelf'\], but the path"):
        http.Routes().get("/shelves/{shelf}", path=ItemPath, response=Found)


def test_a_handler_must_take_what_the_route_declares() -> None:
    table = http.Routes()
    with pytest.raises(TypeError, match="must take a parameter query: Search"):

        @table.get("/a/{shelf}/{number}", path=ItemPath, query=Search, response=Found)
        async def no_query(request: web.Request, path: ItemPath) -> Found:
            raise NotImplementedError

    with pytest.raises(TypeError, match="path: ItemPath, not Search"):

        @table.get("/b/{shelf}/{number}", path=ItemPath, response=Found)
        async def wrong_model(request: web.Request, path: Search) -> Found:
            raise NotImplementedError

    with pytest.raises(TypeError, match=r"no parameter the route does not fill \(extra\)"):

        @table.get("/c", response=Found)
        async def stray(request: web.Request, extra: int) -> Found:
            raise NotImplementedError
