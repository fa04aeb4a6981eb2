"""The service with test-only parts, run as a real process: ``python -m tests.harness [flags]``.

It is ``tests/sample.py``'s service (``test.job`` messages print ``handled <id>`` once done, so
tests read stdout to see which messages a process finished); with ``--stubborn-task``, a task
that ignores cancellation; with ``--broken-contract``, instead of the sample's routes, one that
answers what its OpenAPI document does not promise; with ``--spans FILE``, its spans written to
FILE, one JSON object a line (``relayed <id>`` on stdout says a relay arrived).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Sequence

from aiohttp import web
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
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


class JsonLines(SpanExporter):
    """Appends each finished span to a file as one JSON object a line."""

    def __init__(self, path: str) -> None:
        self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (closed at shutdown)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            self._file.write(json.dumps(json.loads(span.to_json())) + "\n")
        self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self._file.close()


def spans_to(path: str, service_name: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource({"service.name": service_name}))
    provider.add_span_processor(SimpleSpanProcessor(JsonLines(path)))
    return provider


def main(argv: list[str]) -> None:
    tasks = Tasks()
    spans = None
    if "--spans" in argv:
        at = argv.index("--spans")
        spans = argv[at + 1]
        del argv[at : at + 2]
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
        provider = spans_to(spans, settings.service_name) if spans else None
        app = sample_app(settings, tasks, provider)
    serve(app, settings)


if __name__ == "__main__":
    main(sys.argv[1:])
