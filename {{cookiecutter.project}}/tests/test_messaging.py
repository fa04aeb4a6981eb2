"""The delivery rules, on both brokers: ack after the handler, bounded retries, dead letters."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.broker import PUBLISHER
from {{ cookiecutter.package }}.runtime.dispatch import Delivery, Dispatcher
from {{ cookiecutter.package }}.runtime.messaging import EventHandlers, MessageInfo, validate
from {{ cookiecutter.package }}.runtime.tasks import Tasks
from {{ cookiecutter.package }}.runtime.topics import topic_matches
from {{ cookiecutter.package }}.settings import Settings

from .conftest import Client, Letter, RawBroker, eventually


class Ping(BaseModel):
    n: int


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("a.b", "a.b", True),
        ("a.*", "a.b", True),
        ("a.*", "a.b.c", False),
        ("a.#", "a", True),
        ("a.#", "a.b.c", True),
        ("#", "anything.at.all", True),
        ("#.c", "a.b.c", True),
        ("*.b.#", "a.b", True),
        ("a.b", "a.bc", False),
    ],
)
def test_topic_matching_follows_rabbitmq(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_payloads_are_strict_unless_a_model_opts_a_field_out() -> None:
    class Plain(BaseModel):
        value: float

    with pytest.raises(ValidationError, match="value"):
        validate(Plain, b'{"value": "1"}')

    class Reading(BaseModel):
        model_config = ConfigDict(strict=True)

        value: float
        count: int = Field(strict=False)

    assert validate(Reading, b'{"value": 1, "count": "7"}').count == 7
    with pytest.raises(ValidationError, match="value"):
        validate(Reading, b'{"value": "1", "count": 7}')


async def start_with(
    start: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    handler: Callable[[web.Application, Ping], Awaitable[None]],
) -> web.Application:
    events = EventHandlers()
    events.subscribe("test.ping", Ping)(handler)
    events.publishes("nobody.listens", Ping)
    events.publishes("nobody.else", Ping)
    client = await start(create_app(settings, events=events, jobs=Tasks()))
    return client.app


async def test_bad_json_and_invalid_payloads_are_dead_lettered_at_once(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> None:
    handled: list[int] = []

    async def handler(app: web.Application, ping: Ping) -> None:
        handled.append(ping.n)

    app = await start_with(start, settings, handler)
    raw = RawBroker(app)
    await raw.publish("test.ping", b"{not json")
    await raw.publish("test.ping", b'{"n": "many"}')
    await raw.publish("test.ping", b'{"n": "7"}')  # strict: digits in a string are not a number
    await raw.publish("test.ping", b'{"n": 1}')
    letters: list[Letter] = []

    async def three_dead_letters() -> bool:
        letters.extend(await raw.dead_letters())
        return len(letters) >= 3

    await eventually(three_dead_letters)
    await eventually(lambda: _is(handled, [1]))
    by_body = {letter.body: letter.headers for letter in letters}
    assert by_body[b"{not json"]["x-attempts"] == 1
    assert by_body[b"{not json"]["x-error-type"] == "ValidationError"
    assert "JSON" in str(by_body[b"{not json"]["x-error"])
    assert by_body[b'{"n": "many"}']["x-original-routing-key"] == "test.ping"
    assert "n:" in str(by_body[b'{"n": "many"}']["x-error"])
    assert by_body[b'{"n": "7"}']["x-error-type"] == "ValidationError"


async def test_failing_handler_runs_max_attempts_then_dead_letters(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> None:
    attempts: list[int] = []

    async def handler(app: web.Application, ping: Ping) -> None:
        attempts.append(ping.n)
        if ping.n == 13:
            raise RuntimeError("unlucky number")

    app = await start_with(start, settings, handler)
    raw = RawBroker(app)
    await raw.publish("test.ping", b'{"n": 13}')
    await raw.publish("test.ping", b'{"n": 1}')
    letters: list[Letter] = []

    async def dead_lettered() -> bool:
        letters.extend(await raw.dead_letters())
        return bool(letters)

    await eventually(dead_lettered)
    assert attempts.count(13) == settings.max_attempts == 3
    assert attempts.count(1) == 1  # other messages flowed meanwhile
    [(headers, body, _)] = letters
    assert body == b'{"n": 13}'
    assert headers["x-attempts"] == 3
    assert headers["x-error-type"] == "RuntimeError"
    assert headers["x-error"] == "unlucky number"
    assert headers["x-original-routing-key"] == "test.ping"


async def test_handler_that_recovers_is_acked_once_it_succeeds(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> None:
    attempts: list[int] = []

    async def handler(app: web.Application, ping: Ping) -> None:
        attempts.append(ping.n)
        if len(attempts) < 2:
            raise ConnectionError("database briefly away")

    app = await start_with(start, settings, handler)
    raw = RawBroker(app)
    await raw.publish("test.ping", b'{"n": 7}')
    await eventually(lambda: _is(attempts, [7, 7]))
    await _settle()
    assert attempts == [7, 7]
    assert await raw.dead_letters() == []


async def _is(actual: list[int], expected: list[int]) -> bool:
    return actual == expected


async def _settle() -> None:
    """Give a wrongly repeated delivery time to show up before asserting it did not."""
    await asyncio.sleep(0.3)


async def test_prefetch_bounds_the_handlers_in_flight(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> None:
    running = 0
    most = 0
    done: list[int] = []

    async def slow(app: web.Application, ping: Ping) -> None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        done.append(ping.n)

    app = await start_with(start, settings.model_copy(update={"prefetch": 5}), slow)
    raw = RawBroker(app)
    await raw.publish("test.ping", *(json.dumps({"n": n}).encode() for n in range(60)))

    async def all_done() -> bool:
        return len(done) == 60

    await eventually(all_done, within=15)
    assert most == 5  # slower handlers than publishes: the broker holds the rest, not memory


async def test_an_unroutable_event_is_reported_once_per_routing_key(
    start: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def handler(app: web.Application, ping: Ping) -> None:
        pass

    app = await start_with(start, settings, handler)
    publisher = app[PUBLISHER]
    for _ in range(3):
        await publisher.publish("nobody.listens", Ping(n=1))  # returns: the broker has it
    await publisher.publish("nobody.else", Ping(n=2))
    # r.msg and r.args, not getMessage(): an aio-pika record has an argument whose repr raises.
    reports = [r.args for r in caplog.records if "no queue is bound" in str(r.msg)]
    assert reports == [("nobody.listens",), ("nobody.else",)]


async def test_a_fault_in_the_runtime_dead_letters_the_message_instead_of_looping(
    start: Callable[[web.Application], Awaitable[Client]],
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handled: list[int] = []

    async def handler(app: web.Application, ping: Ping) -> None:
        handled.append(ping.n)

    app = await start_with(start, settings, handler)
    handle = Dispatcher.handle
    faults: list[bytes] = []

    async def broken(self: Dispatcher, delivery: Delivery) -> None:
        if delivery.body == b'{"n": 13}':
            faults.append(delivery.body)
            raise RuntimeError("a bug in the runtime")
        await handle(self, delivery)

    monkeypatch.setattr(Dispatcher, "handle", broken)
    raw = RawBroker(app)
    await raw.publish("test.ping", b'{"n": 13}', b'{"n": 1}')
    letters: list[Letter] = []

    async def dead_lettered() -> bool:
        letters.extend(await raw.dead_letters())
        return bool(letters)

    await eventually(dead_lettered)
    await eventually(lambda: _is(handled, [1]))
    await _settle()
    assert [letter.body for letter in letters] == [b'{"n": 13}']
    assert faults == [b'{"n": 13}']  # once: no redelivery loop
    ours = [r for r in caplog.records if r.name.startswith("{{ cookiecutter.package }}")]
    errors = [r for r in ours if "could not handle a test.ping message" in r.getMessage()]
    assert [r.levelno for r in errors] == [logging.ERROR]


async def test_a_handler_that_asks_gets_the_message_info(
    start: Callable[[web.Application], Awaitable[Client]], settings: Settings
) -> None:
    seen: list[MessageInfo] = []
    events = EventHandlers()
    events.publishes("test.ping", Ping)

    @events.subscribe("test.ping", Ping)
    async def fail_once(app: web.Application, ping: Ping, message: MessageInfo) -> None:
        seen.append(message)
        if message.attempt == 1:
            raise RuntimeError("first run fails")

    client = await start(create_app(settings, events=events, jobs=Tasks()))
    publisher = client.app[PUBLISHER]
    await publisher.publish(
        "test.ping", Ping(n=1), headers={"x-tenant": "t1"}, correlation_id="c-1"
    )
    await eventually(lambda: _is([m.attempt for m in seen], [1, 2]))
    first, retry = seen
    assert (first.routing_key, first.correlation_id, first.headers["x-tenant"]) == (
        "test.ping",
        "c-1",
        "t1",
    )
    assert first.message_id
    assert retry.message_id == first.message_id  # the retry is a copy of the same message
    assert retry.correlation_id == "c-1"
    assert retry.headers["x-tenant"] == "t1"
    assert not first.redelivered
