"""The REST runtime, on the sample service: strict bodies, a problem JSON body for every way a
request can be wrong, and an OpenAPI document of every route."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import BaseModel

from {{ cookiecutter.package }}.runtime import TEMPLATE_VERSION, front
from {{ cookiecutter.package }}.runtime.broker import PUBLISHER
from {{ cookiecutter.package }}.runtime.messaging import PublishError

from .conftest import Client, make_settings
from .sample import sample_app

PROBLEM = "application/problem+json"


async def assert_problem(response: ClientResponse, status: int) -> dict[str, Any]:
    assert response.status == status
    assert response.content_type == PROBLEM
    body: dict[str, Any] = await response.json(content_type=PROBLEM)
    assert body["status"] == status
    assert isinstance(body["title"], str)
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["detail"]
    return body


async def test_malformed_json_is_400(sample_memory_client: Client) -> None:
    response = await sample_memory_client.post(
        "/test/readings", data=b'{"key": ', headers={"Content-Type": "application/json"}
    )
    body = await assert_problem(response, 400)
    assert "not valid JSON" in str(body["detail"])


async def test_wrong_type_is_422_naming_the_field(sample_memory_client: Client) -> None:
    response = await sample_memory_client.post("/test/readings", json={"key": "t1", "value": "hot"})
    body = await assert_problem(response, 422)
    assert body["errors"] == [
        {"loc": ["value"], "msg": "Input should be a valid number", "type": "float_type"}
    ]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"key": "0", "value": False}, "value"),  # a boolean is not a number ...
        ({"key": "t1", "value": "12"}, "value"),  # ... nor is a string of digits
        ({"key": "t1", "value": [1]}, "value"),
        ({"key": 5, "value": 1}, "key"),  # and a number is not a string
        ({"key": True, "value": 1}, "key"),
    ],
)
async def test_only_what_the_openapi_schema_says_is_accepted(
    sample_memory_client: Client, payload: dict[str, Any], field: str
) -> None:
    document = await (await sample_memory_client.get("/openapi.json")).json()
    schema = document["components"]["schemas"]["ReadingIn"]["properties"]
    assert (schema["key"]["type"], schema["value"]["type"]) == ("string", "number")
    response = await sample_memory_client.post("/test/readings", json=payload)
    body = await assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [[field]]


async def test_an_integer_is_a_number(sample_memory_client: Client) -> None:
    response = await sample_memory_client.post("/test/readings", json={"key": "t1", "value": 12})
    assert response.status == 202


async def test_unknown_field_missing_field_and_bad_key_are_422(
    sample_memory_client: Client,
) -> None:
    for payload in (
        {"key": "t1", "value": 1, "unit": "C"},
        {"key": "t1"},
        {"key": "no spaces", "value": 1},
        {"key": "", "value": 1},
        [1, 2],
    ):
        await assert_problem(await sample_memory_client.post("/test/readings", json=payload), 422)


async def test_non_finite_number_is_422(sample_memory_client: Client) -> None:
    for number in (b"NaN", b"Infinity", b"-Infinity"):
        response = await sample_memory_client.post(
            "/test/readings",
            data=b'{"key": "t1", "value": ' + number + b"}",
            headers={"Content-Type": "application/json"},
        )
        body = await assert_problem(response, 422)
        assert body["errors"][0]["type"] == "finite_number"


async def test_body_without_content_type_is_read_as_json(sample_memory_client: Client) -> None:
    response = await sample_memory_client.post(
        "/test/readings",
        data=b'{"key": "t1", "value": 1}',
        skip_auto_headers=["Content-Type"],
    )
    assert "Content-Type" not in response.request_info.headers
    assert response.status == 202


async def test_body_of_another_media_type_is_415(sample_memory_client: Client) -> None:
    response = await sample_memory_client.post(
        "/test/readings",
        data=b'{"key": "t1", "value": 1}',
        headers={"Content-Type": "text/plain"},
    )
    assert response.status == 415
    body = await assert_problem(response, 415)
    assert "application/json" in body["detail"]
    assert "text/plain" in body["detail"]
    await asyncio.sleep(0.05)  # had it been published, the handler would have counted it
    assert (await sample_memory_client.get("/test/readings/t1")).status == 404


async def test_body_over_the_limit_is_413() -> None:
    settings = make_settings(max_body_size=1000)
    async with TestClient(TestServer(sample_app(settings))) as small:
        payload = b'{"key": "t1", "value": 1, "pad": "' + b"x" * 2000 + b'"}'
        response = await small.post(
            "/test/readings", data=payload, headers={"Content-Type": "application/json"}
        )
        await assert_problem(response, 413)


async def test_unknown_route_is_404_and_wrong_method_405(sample_memory_client: Client) -> None:
    await assert_problem(await sample_memory_client.get("/no/such/route"), 404)
    response = await sample_memory_client.delete("/test/readings/t1")
    await assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


async def test_unexpected_error_is_500_without_a_traceback(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    app = sample_app(make_settings())

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("secret internals at /srv/app.py line 7")

    front.add_route(app, "GET", "/broken", broken)
    client = await start(app)
    response = await client.get("/broken")
    body = await assert_problem(response, 500)
    text = str(body)
    assert "secret" not in text
    assert "Traceback" not in text
    assert "RuntimeError" not in text


async def test_a_route_added_around_the_front_stops_the_start() -> None:
    app = sample_app(make_settings())

    async def raw(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/raw", raw)  # no problem JSON, correlation id or metrics
    runner = web.AppRunner(app)
    with pytest.raises(RuntimeError, match=r"/raw was added with app\.router"):
        await runner.setup()
    await runner.cleanup()


async def test_publish_failure_is_503(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    class Unconfirmed:
        async def publish(self, routing_key: str, event: BaseModel, **_: object) -> None:
            raise PublishError("RabbitMQ did not confirm within 0.1s")

    app = sample_app(make_settings())
    app[PUBLISHER] = Unconfirmed()
    client = await start(app)
    response = await client.post("/test/readings", json={"key": "t1", "value": 1})
    body = await assert_problem(response, 503)
    assert "did not confirm" in str(body["detail"])


async def test_openapi_documents_every_route(sample_memory_client: Client) -> None:
    response = await sample_memory_client.get("/openapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["openapi"].startswith("3.")
    assert document["info"]["x-template-version"] == TEMPLATE_VERSION
    assert re.fullmatch(r"\d+\.\d+\.\d+", TEMPLATE_VERSION)
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in sample_memory_client.app.router.routes()
        if route.resource is not None and route.resource.name != front.UNMATCHED
    }
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    # The service's own documents and metrics are served, not described.
    served = {("get", "/openapi.json"), ("get", "/asyncapi.json"), ("get", "/metrics")}
    assert routes - served == documented
    assert "/metrics" not in document["paths"]
    post = document["paths"]["/test/readings"]["post"]
    schema_ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref == "#/components/schemas/ReadingIn"
    assert set(document["components"]["schemas"]["ReadingIn"]["required"]) == {
        "key",
        "value",
    }
    assert {"202", "400", "413", "415", "422", "503"} <= set(post["responses"])


async def test_liveness(sample_memory_client: Client) -> None:
    response = await sample_memory_client.get("/health/live")
    assert response.status == 200
    assert await response.json() == {"status": "alive"}
