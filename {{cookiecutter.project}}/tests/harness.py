"""The service with test-only parts, run as a real process: ``python -m tests.harness [flags]``.

It is ``tests/sample.py``'s service (``test.job`` messages print ``handled <id>`` once done, so
tests read stdout to see which messages a process finished) and, with ``--stubborn-task``, a
task that ignores cancellation.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from {{ cookiecutter.package }}.runtime.lifecycle import serve
from {{ cookiecutter.package }}.runtime.logs import configure_logging
from {{ cookiecutter.package }}.runtime.tasks import Tasks
from {{ cookiecutter.package }}.settings import load_settings

from .sample import sample_app


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
    settings = load_settings(argv)
    configure_logging(settings.log_level, settings.log_format)
    serve(sample_app(settings, tasks), settings)


if __name__ == "__main__":
    main(sys.argv[1:])
