"""The two documents of the rendered example, as its server serves them, are valid: OpenAPI 3.1
by openapi-spec-validator, AsyncAPI 3.0 by the official JSON Schema (``schemas/``), and every
``$ref`` in them resolves. Both describe the example's own routes and events."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate as validate_openapi

from .conftest import TEMPLATE, run, uv
from .team_edits import version

ASYNCAPI_SCHEMA = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json.gz"

# Run inside the rendered project: serve the app on the in-process broker, print both documents.
FETCH = """
import asyncio, json
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr
from {package}.app import create_app
from {package}.settings import Settings

async def main():
    app = create_app(Settings(amqp_url=SecretStr("memory://")))
    async with TestClient(TestServer(app)) as client:
        documents = [await (await client.get(path)).json()
                     for path in ("/openapi.json", "/asyncapi.json")]
    print(json.dumps(documents))

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def documents(installed: dict[str, Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    out = run(
        installed["default"],
        uv(), "run", "--no-sync", "python", "-c", FETCH.format(package="measurement_service"),
    )  # fmt: skip
    [line] = [line for line in out.splitlines() if line.startswith("[{")]  # stderr follows
    openapi, asyncapi = json.loads(line)
    return openapi, asyncapi


def refs(node: Any) -> list[str]:
    """Every ``$ref`` in ``node``."""
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs(value)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert part in node, f"{ref} does not resolve"
        node = node[part]
    return node


def test_the_openapi_document_is_valid_and_describes_the_routes(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    openapi, _ = documents
    validate_openapi(openapi)
    for ref in refs(openapi):
        resolve(openapi, ref)
    assert openapi["info"]["x-template-version"] == version(TEMPLATE)
    assert {"/measurements", "/sensors", "/sensors/{sensor}", "/summary"} <= set(openapi["paths"])


def test_the_asyncapi_document_is_valid_and_describes_the_events(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    _, asyncapi = documents
    schema = json.loads(gzip.decompress(ASYNCAPI_SCHEMA.read_bytes()))
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(asyncapi))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    for ref in refs(asyncapi):
        resolve(asyncapi, ref)
    assert asyncapi["info"]["x-template-version"] == version(TEMPLATE)
    assert asyncapi["info"]["version"] == "0.1.0"
    actions = {
        (resolve(asyncapi, op["channel"]["$ref"])["address"], op["action"])
        for op in asyncapi["operations"].values()
    }
    assert actions == {
        ("measurement.recorded", "send"),
        ("measurement.recorded", "receive"),
        ("sensor.alert", "send"),
        ("sensors.summary", "send"),
    }
    schemas = set(asyncapi["components"]["schemas"])
    assert {"MeasurementRecorded", "AlertRaised", "Summary"} <= schemas


def test_the_asyncapi_schema_catches_a_broken_document(
    documents: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    """The check above can fail: the schema refuses an unknown action and a mixed-up binding."""
    _, asyncapi = documents
    schema = json.loads(gzip.decompress(ASYNCAPI_SCHEMA.read_bytes()))
    broken = json.loads(json.dumps(asyncapi))
    operation = next(iter(broken["operations"].values()))
    operation["action"] = "consume"
    channel = next(iter(broken["channels"].values()))
    channel["bindings"]["amqp"]["queue"] = {"name": "both"}
    assert len(list(jsonschema.Draft7Validator(schema).iter_errors(broken))) == 2
