"""The AsyncAPI document: built from the declarations the runtime routes and publishes by, so
every subscription and publication is in it, on the exchange and queue the settings name."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import SecretStr

from {{ cookiecutter.package }}.runtime import TEMPLATE_VERSION
from {{ cookiecutter.package }}.runtime.asyncapi import Exchange, asyncapi_document
from {{ cookiecutter.package }}.runtime.messaging import EventHandlers
from {{ cookiecutter.package }}.settings import SETTINGS

from .conftest import Client, make_settings
from .sample import Job, Reading, events


def resolve(document: dict[str, Any], ref: dict[str, str]) -> Any:
    node: Any = document
    for part in ref["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node


async def test_every_declaration_is_an_operation_on_its_channel(
    sample_memory_client: Client,
) -> None:
    response = await sample_memory_client.get("/asyncapi.json")
    assert response.status == 200
    document = await response.json()
    assert document["asyncapi"] == "3.0.0"
    assert document["info"]["x-template-version"] == TEMPLATE_VERSION
    settings = sample_memory_client.app[SETTINGS]

    operations = document["operations"]
    received = {
        (name, op["channel"]["$ref"])
        for name, op in operations.items()
        if op["action"] == "receive"
    }
    assert received == {
        (s.handler.__name__, f"#/channels/{s.pattern}") for s in events.subscriptions
    }
    sent = {
        resolve(document, op["channel"])["address"]
        for op in operations.values()
        if op["action"] == "send"
    }
    assert sent == {p.routing_key for p in events.publications}

    reading = operations["on_reading"]
    channel = resolve(document, reading["channel"])
    assert channel["address"] == "test.reading"
    exchange = channel["bindings"]["amqp"]["exchange"]
    assert (exchange["name"], exchange["type"], exchange["vhost"]) == (
        settings.exchange,
        "topic",
        "/",
    )
    assert reading["x-queue"] == settings.service_name
    assert settings.service_name in {c["address"] for c in document["channels"].values()}
    (message_ref,) = reading["messages"]
    message = resolve(document, message_ref)
    if "$ref" in message:  # a channel's messages point at the components
        message = resolve(document, message)
    assert message["name"] == "Reading"
    schema = resolve(document, message["payload"])
    assert set(schema["properties"]) == set(Reading.model_fields)
    assert set(schema["required"]) == {"id", "key", "value"}

    # One channel per address: the sample sends and receives test.job on the same one.
    job = resolve(document, operations["publish_test.job"]["channel"])
    assert job["address"] == "test.job"
    assert resolve(document, operations["work"]["channel"]) is job
    assert set(job["messages"]) == {Job.__name__}


def test_the_vhost_comes_from_the_broker_url_and_wildcards_keep_their_channels_apart() -> None:
    settings = make_settings(amqp_url=SecretStr("amqp://u:p@broker:5672/fleet%2Fa"))
    exchange = Exchange.of(settings)
    assert exchange.vhost == "fleet/a"
    assert exchange.queues.dead_letter == f"{settings.service_name}.dead-letter"
    events = EventHandlers()
    events.publishes("sensor.alert", Job)

    async def one(app: web.Application, job: Job) -> None:
        """Handle one word."""

    async def many(app: web.Application, job: Job) -> None:
        pass

    events.subscribe("sensor.*", Job)(one)
    events.subscribe("sensor.#", Job)(many)
    events.subscribe("sensor.x", Job)(one)  # the same function again: an id of its own
    document = asyncapi_document(events, exchange, "svc", "2.0.0", "")
    assert document["info"]["version"] == "2.0.0"
    addresses = {c["address"] for c in document["channels"].values()}
    assert addresses >= {"sensor.alert", "sensor.*", "sensor.#"}
    assert all(re.fullmatch(r"[\w.-]+", key) for key in document["channels"])
    assert document["operations"]["one"]["summary"] == "Handle one word."
    assert document["operations"]["one_2"]["channel"] == {"$ref": "#/channels/sensor.x"}
    assert "summary" not in document["operations"]["many"]
    assert document["operations"]["one"]["bindings"]["amqp"]["ack"] is True
    sends = [op for op in document["operations"].values() if op["action"] == "send"]
    assert [op["bindings"]["amqp"]["deliveryMode"] for op in sends] == [2]
