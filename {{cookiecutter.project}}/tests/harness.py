"""The service with test-only parts, run as a real process: ``python -m tests.harness [flags]``.

It is ``tests/sample.py``'s service (``test.job`` messages print ``handled <id>`` once done, so
tests read stdout to see which messages a process finished); with ``--stubborn-task``, a task
that ignores cancellation; with ``--broken-contract``, instead of the sample's routes, one that
answers what its OpenAPI document does not promise.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web
from pydantic import BaseModel, Field

from {{ cookiecutter.package }}.app import create_app
from {{ cookiecutter.package }}.runtime.http import Routes
from {{ cookiecutter.package }}.runtime.lifecycle import serve
from {{ cookiecutter.package }}.runtime.logs import configure_logging
from {{ cookiecutter.package }}.runtime.tasks import Tasks
from {{ cookiecutter.package }}.settings import load_settings

from .sample import READINGS, Readings, events, sample_app

broken = Routes()


class Square(BaseModel):
    n: int = Field(ge=0, le=1000)


class Squared(BaseModel):
    square: int


@broken.get("/squares/{n}", path=Square, response=Squared)
async def square(request: web.Request, path: Square) -> web.StreamResponse:
    # Promises an integer and sends a string: the contract test must notice.
    return web.json_response({"square": str(path.n**2)})


async def stubborn(app: web.Application) -> None:
    while True:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            continue  # the bug the runtime must survive


def main(argv: list[str]) -> None:
    tasks = Tasks()
    if "--stubborn-task" in argv:
        argv.remove("--stubborn-task")
        tasks.long_running(stubborn)
    contract_broken = "--broken-contract" in argv
    if contract_broken:
        argv.remove("--broken-contract")
    settings = load_settings(argv)
    configure_logging(settings.log_level, settings.log_format)
    if contract_broken:
        app = create_app(settings, routes=broken, events=events, jobs=tasks)
        app[READINGS] = Readings()
    else:
        app = sample_app(settings, tasks)
    serve(app, settings)


if __name__ == "__main__":
    main(sys.argv[1:])
