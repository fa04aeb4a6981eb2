"""The service with test-only parts, run as a real process: ``python -m tests.harness [flags]``.

It handles ``test.job`` messages (sleeping ``seconds``, then printing ``handled <id>``), has a
slow route ``GET /test/slow?seconds=``, and, with ``--stubborn-task``, a task that ignores
cancellation. Tests read stdout to see which messages a process finished.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from pydantic import BaseModel

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.lifecycle import serve
from {{ cookiecutter.package }}.runtime.logs import configure_logging
from {{ cookiecutter.package }}.runtime.messaging import EventHandlers
from {{ cookiecutter.package }}.runtime.tasks import Tasks
from {{ cookiecutter.package }}.settings import load_settings


class Job(BaseModel):
    id: int
    seconds: float = 0.0


events = EventHandlers()


@events.subscribe("test.job", Job)
async def work(app: web.Application, job: Job) -> None:
    await asyncio.sleep(job.seconds)
    print(f"handled {job.id}", flush=True)


async def stubborn(app: web.Application) -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue  # the bug the runtime must survive


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "0.5")))
    return web.json_response({"slow": "done"})


def main(argv: list[str]) -> None:
    tasks = Tasks()
    if "--stubborn-task" in argv:
        argv.remove("--stubborn-task")
        tasks.long_running(stubborn)
    settings = load_settings(argv)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings, events=events, jobs=tasks)
    app.router.add_get("/test/slow", slow)
    serve(app, settings)


if __name__ == "__main__":
    main(sys.argv[1:])
