"""How the service declares its parts: ``Routes.route`` for any HTTP method, publications that
the publisher enforces, and registries that refuse a declaration made after the app was built,
which would otherwise never be bound."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from pydantic import BaseModel

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime import front, http
from {{ cookiecutter.package }}.runtime.broker import PUBLISHER
from {{ cookiecutter.package }}.runtime.messaging import (
    FOUND_KEYS,
    EventHandlers,
    UndeclaredEventError,
)
from {{ cookiecutter.package }}.runtime.tasks import Tasks

from .conftest import Client, make_settings


class Note(BaseModel):
    text: str


class Done(BaseModel):
    ok: bool


async def test_route_declares_any_method_with_or_without_a_body(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    routes = http.Routes()
    notes: dict[str, str] = {}

    @routes.route("PUT", "/notes/{name}", body=Note, response=Done)
    async def put_note(request: web.Request, body: Note) -> Done:
        notes[request.match_info["name"]] = body.text
        return Done(ok=True)

    @routes.route("DELETE", "/notes/{name}", response=Done, status=200)
    async def delete_note(request: web.Request) -> Done:
        return Done(ok=notes.pop(request.match_info["name"], None) is not None)

    app = web.Application()
    front.setup(app, None, None)
    http.setup(app, [routes], "notes", "1.0.0", "")
    front.close(app)
    client = await start(app)
    response = await client.put("/notes/a", json={"text": "hello"})
    assert (response.status, await response.json()) == (200, {"ok": True})
    assert notes == {"a": "hello"}
    response = await client.put("/notes/a", json={"text": 1})
    assert response.status == 422
    response = await client.delete("/notes/a")
    assert (response.status, await response.json()) == (200, {"ok": True})

    document = await (await client.get("/openapi.json")).json()
    item = document["paths"]["/notes/{name}"]
    assert set(item) == {"put", "delete"}
    assert {"400", "413", "415", "422"} <= set(item["put"]["responses"])
    assert "requestBody" not in item["delete"]


def test_a_route_declared_after_setup_fails_loudly() -> None:
    routes, app = http.Routes(), web.Application()
    front.setup(app, None, None)
    http.setup(app, [routes], "late", "1.0.0", "")
    with pytest.raises(RuntimeError, match="GET /late was declared after the app was built"):

        @routes.get("/late", response=Done)
        async def late(request: web.Request) -> Done:
            return Done(ok=True)


def test_a_subscription_made_after_the_app_was_built_fails_loudly() -> None:
    events = EventHandlers()
    create_app(make_settings(), events=events, jobs=Tasks())
    with pytest.raises(RuntimeError, match=r"on_note subscribed to 'note\.added' after the app"):

        @events.subscribe("note.added", Note)
        async def on_note(app: web.Application, note: Note) -> None:
            pass


def test_a_task_declared_after_the_app_was_built_fails_loudly() -> None:
    jobs = Tasks()
    create_app(make_settings(), events=EventHandlers(), jobs=jobs)
    with pytest.raises(RuntimeError, match="task tidy was declared after the app was built"):

        @jobs.periodic(every=1.0)
        async def tidy(app: web.Application) -> None:
            pass


class Other(BaseModel):
    text: str


async def test_only_declared_events_are_published(
    start: Callable[[web.Application], Awaitable[Client]],
) -> None:
    events = EventHandlers()
    events.publishes("note.added", Note)
    client = await start(create_app(make_settings(), events=events, jobs=Tasks()))
    publisher = client.app[PUBLISHER]
    await publisher.publish("note.added", Note(text="a"))
    with pytest.raises(UndeclaredEventError, match=r"'note\.edited' is not a declared publication"):
        await publisher.publish("note.edited", Note(text="a"))
    with pytest.raises(UndeclaredEventError, match=r"declared with Note, not Other"):
        await publisher.publish("note.added", Other(text="a"))


def test_a_publication_declared_twice_or_late_fails_loudly() -> None:
    events = EventHandlers()
    events.publishes("note.added", Note)
    with pytest.raises(ValueError, match="declared twice"):
        events.publishes("note.added", Note)
    with pytest.raises(ValueError, match="empty word"):
        events.publishes("note..added", Note)
    with pytest.raises(ValueError, match=r"'note\.\*' is a pattern"):
        events.publishes("note.*", Note)
    create_app(make_settings(), events=events, jobs=Tasks())
    with pytest.raises(RuntimeError, match=r"'note\.removed' was declared after the app"):
        events.publishes("note.removed", Note)


def test_the_handler_found_for_a_routing_key_follows_the_subscriptions() -> None:
    events = EventHandlers()

    @events.subscribe("note.*", Note)
    async def on_note(app: web.Application, event: Note) -> None: ...

    assert events.find("other.added") is None  # before freeze: not remembered

    @events.subscribe("other.#", Note)
    async def on_other(app: web.Application, event: Note) -> None: ...

    events.freeze()
    for _ in range(2):  # the second time from what find remembered
        assert events.find("note.added") is events.subscriptions[0]
        assert events.find("other.added") is events.subscriptions[1]
        assert events.find("note") is None
    for i in range(FOUND_KEYS + 10):  # past what it remembers: still right
        assert events.find(f"note.{i}") is events.subscriptions[0]
