"""Both log formats: text for people, one JSON object a line for a collector; both name the
correlation id of the work at hand."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from {{ cookiecutter.package }}.runtime.correlation import CORRELATION_ID, HEADER
from {{ cookiecutter.package }}.runtime.logs import configure_logging

from .conftest import Client


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:], root.level = handlers, level


@pytest.mark.usefixtures("restore_logging")
def test_json_format_is_one_object_a_line_with_the_traceback_inside(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("test.json")
    log.info("reading %s recorded", "r1")
    try:
        raise ValueError("bad reading")
    except ValueError:
        log.exception("handler failed")
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "reading r1 recorded"
    assert (first["level"], first["logger"]) == ("INFO", "test.json")
    assert second["level"] == "ERROR"
    assert "ValueError: bad reading" in second["exception"]


@pytest.mark.usefixtures("restore_logging")
def test_text_format_is_readable_and_respects_the_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("WARNING", "text")
    logging.getLogger("test.text").info("hidden")
    logging.getLogger("test.text").warning("shown")
    err = capsys.readouterr().err
    assert "hidden" not in err
    assert "WARNING test.text: shown" in err


@pytest.mark.usefixtures("restore_logging")
def test_every_log_line_names_the_id_and_json_keeps_extra_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    log = logging.getLogger("test.correlation")
    configure_logging("INFO", "json")
    token = CORRELATION_ID.set("req-5")
    log.info("recorded", extra={"sensor": "boiler", "value": 1.5})
    CORRELATION_ID.reset(token)
    log.info("outside any request")
    inside, outside = (json.loads(line) for line in capsys.readouterr().err.splitlines())
    assert (inside["correlation_id"], inside["sensor"], inside["value"]) == ("req-5", "boiler", 1.5)
    assert outside["correlation_id"] is None
    configure_logging("INFO", "text")
    token = CORRELATION_ID.set("req-6")
    log.info("recorded")
    CORRELATION_ID.reset(token)
    assert "INFO    test.correlation [req-6]: recorded" in capsys.readouterr().err


@pytest.mark.usefixtures("restore_logging")
async def test_the_access_log_names_the_request_id_and_the_next_request_has_its_own(
    sample_memory_client: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("INFO", "json")
    await sample_memory_client.get("/health/live", headers={HEADER: "req-7"})
    await sample_memory_client.get("/health/live")  # the same connection, no id given
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    access = [line for line in lines if line["logger"] == "aiohttp.access"]
    assert len(access) == 2
    assert access[0]["correlation_id"] == "req-7"
    assert access[1]["correlation_id"] not in (None, "req-7")
