"""What test_updates.py does to a generated project, as a team would, and to the template, as a
release would.

The team replaces the example with a guestbook of its own (a route, a handler, a task, its own
settings and tests), adds a dependency, rewrites the README and deletes the CI workflow. The
release changes a runtime file, adds a runtime setting and a file, bumps a dependency and
changes the CI workflow.
"""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = "measurement_service"
PREFIX = "MEASUREMENT_SERVICE_"
SERVICE = f"src/{PACKAGE}/service"

TEAM_FILES = {
    f"{SERVICE}/__init__.py": '''"""The guestbook: signed over REST, kept from events."""

from __future__ import annotations

from aiohttp import web

from .events import events
from .models import GUESTBOOK, Guestbook
from .routes import routes
from .settings import SERVICE_SETTINGS, ServiceSettings
from .tasks import tasks

__all__ = ["events", "routes", "setup", "tasks"]


def setup(app: web.Application, settings: ServiceSettings) -> None:
    app[SERVICE_SETTINGS] = settings
    app[GUESTBOOK] = Guestbook()
''',
    f"{SERVICE}/models.py": '''"""Signatures, and the book that keeps them."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field


class SignatureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=40)


class Signed(BaseModel):
    id: UUID
    name: str


class Signatures(BaseModel):
    greetings: list[str]


@dataclass
class Guestbook:
    seen: set[UUID] = field(default_factory=set)
    names: list[str] = field(default_factory=list)


GUESTBOOK = web.AppKey("guestbook", Guestbook)
''',
    f"{SERVICE}/routes.py": '''"""Sign the book; read it."""

from __future__ import annotations

from uuid import uuid4

from aiohttp import web
from yarl import URL

from ..runtime.broker import PUBLISHER
from ..runtime.http import Routes
from .models import GUESTBOOK, SignatureIn, Signatures, Signed
from .settings import SERVICE_SETTINGS

routes = Routes()


@routes.post("/signatures", body=SignatureIn, response=Signed, status=202, errors=(503,))
async def sign(request: web.Request, body: SignatureIn) -> Signed:
    signed = Signed(id=uuid4(), name=body.name)
    await request.app[PUBLISHER].publish("guest.signed", signed)
    return signed


@routes.get("/signatures", response=Signatures)
async def read(request: web.Request) -> Signatures:
    prefix = request.app[SERVICE_SETTINGS].greeting
    names = request.app[GUESTBOOK].names
    return Signatures(greetings=[f"{prefix} {URL.build(path=name).path}" for name in names])
''',
    f"{SERVICE}/events.py": '''"""A signature, once per id."""

from __future__ import annotations

from aiohttp import web

from ..runtime.messaging import EventHandlers
from .models import GUESTBOOK, Signed

events = EventHandlers()
events.publishes("guest.signed", Signed)


@events.subscribe("guest.signed", Signed)
async def on_signed(app: web.Application, signed: Signed) -> None:
    book = app[GUESTBOOK]
    if signed.id not in book.seen:
        book.seen.add(signed.id)
        book.names.append(signed.name)
''',
    f"{SERVICE}/tasks.py": '''"""How full the book is, now and then."""

from __future__ import annotations

import logging

from aiohttp import web

from ..runtime.tasks import Tasks
from .models import GUESTBOOK
from .settings import SERVICE_SETTINGS

log = logging.getLogger(__name__)
tasks = Tasks()


@tasks.periodic(every=lambda app: app[SERVICE_SETTINGS].report_every)
async def report(app: web.Application) -> None:
    log.info("%d signatures", len(app[GUESTBOOK].names))
''',
    f"{SERVICE}/settings.py": '''"""The guestbook's settings."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, Field


class ServiceSettings(BaseModel):
    greeting: str = Field(default="Hello", description="word before each name")
    report_every: float = Field(default=300.0, gt=0, description="seconds between reports")


SERVICE_SETTINGS = web.AppKey("service_settings", ServiceSettings)
''',
    "tests/service/test_guestbook.py": f'''"""Sign, then read."""

from __future__ import annotations

from {PACKAGE}.settings import Settings

from ..conftest import Client, eventually


async def test_a_signature_is_greeted(memory_client: Client) -> None:
    response = await memory_client.post("/signatures", json={{"name": "Ada"}})
    assert response.status == 202

    async def greeted() -> bool:
        body = await (await memory_client.get("/signatures")).json()
        return bool(body["greetings"] == ["Hello Ada"])

    await eventually(greeted)


def test_the_settings_have_defaults() -> None:
    assert Settings().report_every == 300.0
''',
    "README.md": f"""# Guestbook

Sign it with `POST /signatures`; read it with `GET /signatures`.

| variable | default | meaning |
|---|---|---|
| `{PREFIX}GREETING` | `Hello` | word before each name |
| `{PREFIX}REPORT_EVERY` | `300` | seconds between reports |
""",
}

LIVENESS = 'summary="Whether the process is alive"'


# A template file the team deletes (its CI runs elsewhere), which the release changes.
DELETED = ".github/workflows/ci.yml"


def make_team_edits(project: Path) -> None:
    """Replace the example, add a dependency, rewrite the README, delete the CI workflow."""
    (project / DELETED).unlink()
    for folder in (project / SERVICE, project / "tests" / "service"):
        for path in folder.glob("*.py"):
            if path.name != "__init__.py":
                path.unlink()
    for relative, text in TEAM_FILES.items():
        (project / relative).write_text(text, encoding="utf-8")
    pyproject = project / "pyproject.toml"
    mark = "    # The service's own dependencies:\n"
    text = pyproject.read_text(encoding="utf-8")
    assert mark in text
    pyproject.write_text(text.replace(mark, mark + '    "yarl>=1.9",\n'), encoding="utf-8")


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} has no {old!r}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def version(template: Path) -> str:
    """The template's version: the first ``## X.Y.Z`` heading of its CHANGELOG.md."""
    found = re.search(r"^## (\d+\.\d+\.\d+) ", (template / "CHANGELOG.md").read_text(), re.M)
    assert found is not None
    return found.group(1)


def release_next(template: Path) -> str:
    """The changes of a minor release, made to the template's files; its version."""
    old = version(template)
    major, minor, _ = old.split(".")
    new = f"{major}.{int(minor) + 1}.0"
    project = template / "{{cookiecutter.project}}"
    runtime = project / "src" / "{{cookiecutter.package}}" / "runtime"
    edit(runtime / "health.py", LIVENESS, 'summary="Whether the event loop runs"')
    edit(
        runtime / "settings.py",
        "    # Logging and metrics\n",
        "    drain_poll: float = Field(\n"
        '        default=0.05, gt=0, description="seconds between checks that work has drained"\n'
        "    )\n\n    # Logging and metrics\n",
    )
    row = "| `{{ P }}_SHUTDOWN_TIMEOUT` | `10.0` | seconds in-flight work may take on SIGTERM |\n"
    edit(
        project / "docs" / "runtime.md",
        row,
        row + "| `{{ P }}_DRAIN_POLL` | `0.05` | seconds between drain checks |\n",
    )
    line = "{{ cookiecutter.package | upper }}_SHUTDOWN_TIMEOUT=10.0\n"
    edit(
        project / ".env.example",
        line,
        line + "{{ cookiecutter.package | upper }}_DRAIN_POLL=0.05\n",
    )
    (project / "docs" / "operations.md").write_text(
        "# Operating {{ cookiecutter.project }}\n\nWatch `/health/ready`.\n", encoding="utf-8"
    )
    edit(project / "pyproject.toml", '"pydantic-settings>=2.7,<3"', '"pydantic-settings>=2.8,<3"')
    report = "      - run: uv run coverage report\n"
    edit(
        project / ".github" / "workflows" / "ci.yml",
        report,
        report + "      - run: uv lock --check\n",
    )
    entry = f"## {new} (2099-01-01)\n\n- `DRAIN_POLL`.\n\n### Upgrading\n\nNothing.\n\n"
    edit(template / "CHANGELOG.md", f"## {old} ", entry + f"## {old} ")
    return new
