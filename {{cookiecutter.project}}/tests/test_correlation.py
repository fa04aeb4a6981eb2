"""Correlation ids: from ``X-Request-ID`` (or new) to the response, into the messages a request
publishes, through their handlers, retries and dead letters, and into every log line; odd
values replaced, never passed on. ``test_logs.py`` checks the log lines."""

from __future__ import annotations

import re

import pytest

from {{ cookiecutter.package }}.runtime.broker import PUBLISHER
from {{ cookiecutter.package }}.runtime.correlation import CORRELATION_ID, HEADER

from .conftest import Client, RawBroker, eventually
from .sample import READINGS, Job

HEX_ID = r"[0-9a-f]{32}"


async def test_the_request_id_comes_back_or_a_new_one(sample_memory_client: Client) -> None:
    client = sample_memory_client
    given = await client.post(
        "/test/readings", json={"key": "k", "value": 1}, headers={HEADER: "req-1"}
    )
    assert (given.status, given.headers[HEADER]) == (202, "req-1")
    made = await client.get("/test/readings/k")
    assert re.fullmatch(HEX_ID, made.headers[HEADER])
    missing = await client.get("/no/such/path")  # an error answer carries it too
    assert missing.status == 404
    assert missing.headers[HEADER]


@pytest.mark.parametrize("odd", ["x" * 129, "café", "two words", "a;b", ""])
async def test_an_odd_request_id_is_replaced(sample_memory_client: Client, odd: str) -> None:
    response = await sample_memory_client.get("/health/live", headers={HEADER: odd})
    assert response.status == 200
    replaced = response.headers[HEADER]
    assert re.fullmatch(HEX_ID, replaced)


async def test_the_id_reaches_the_handler_of_what_the_request_published(
    sample_client: Client,
) -> None:
    client = sample_client
    response = await client.post(
        "/test/readings", json={"key": "k", "value": 1}, headers={HEADER: "order-7"}
    )
    assert response.status == 202

    async def handled() -> bool:
        return client.app[READINGS].correlation_ids == ["order-7"]

    await eventually(handled)


async def test_the_id_survives_retries_and_the_dead_letter(sample_client: Client) -> None:
    client = sample_client
    token = CORRELATION_ID.set("job-9")  # as in a task or handler that publishes
    try:
        await client.app[PUBLISHER].publish("test.broken", Job(id=1), headers={"x-tenant": "t1"})
    finally:
        CORRELATION_ID.reset(token)
    raw = RawBroker(client.app)
    letters = []

    async def dead_lettered() -> bool:
        letters.extend(await raw.dead_letters())
        return bool(letters)

    await eventually(dead_lettered)
    [letter] = letters
    assert letter.correlation_id == "job-9"
    assert letter.headers["x-tenant"] == "t1"  # the publisher's headers travel with it
    assert client.app[READINGS].correlation_ids == ["job-9"] * 3  # every attempt


async def test_a_message_without_an_id_gets_one_and_odd_headers_are_ignored(
    sample_client: Client,
) -> None:
    client = sample_client
    raw = RawBroker(client.app)
    odd = {"x-attempts": [1, 2], "x-original-routing-key": 5}
    await raw.publish(
        "test.reading",
        b'{"id": "1c8a8d4e-8b3f-4b8e-9b1a-2b5e8f0c6d7a", "key": "k", "value": 1}',
        headers=odd,
    )

    async def handled() -> bool:
        return len(client.app[READINGS].correlation_ids) == 1

    await eventually(handled)
    [made] = client.app[READINGS].correlation_ids
    assert made is not None
    assert re.fullmatch(HEX_ID, made)
    assert await raw.dead_letters() == []
