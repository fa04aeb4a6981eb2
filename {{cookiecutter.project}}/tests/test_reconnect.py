"""Reconnection, measured on the wire: a local server that turns every AMQP handshake away
records when attempts and probes arrive. No broker needed; the delays come from settings.
The last tests give the link several nodes, as for a cluster."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from {{ cookiecutter.package }}.runtime.amqp.connection import Link

from .conftest import AMQP_URL, eventually, make_settings
from .test_main import free_port

AMQP_HEADER = b"AMQP\x00\x00\x09\x01"


@dataclass
class Doorman:
    """Accepts TCP connections and closes them: those that sent the AMQP header were connection
    attempts, those that sent nothing were probes."""

    port: int = 0
    attempts: list[float] = field(default_factory=list)
    probes: list[float] = field(default_factory=list)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        now = asyncio.get_running_loop().time()
        try:
            first = await asyncio.wait_for(reader.read(8), 0.5)
        except TimeoutError:
            first = b""
        (self.attempts if first == AMQP_HEADER else self.probes).append(now)
        writer.transport.abort()


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[Doorman]:
    """A doorman listening on a free port of its own until the block ends."""
    door = Doorman()
    server = await asyncio.start_server(door.serve, "127.0.0.1", 0)
    door.port = server.sockets[0].getsockname()[1]
    async with server:
        yield door


@pytest.fixture
async def doorman() -> AsyncIterator[Doorman]:
    async with serving() as door:
        yield door


async def test_attempts_back_off_with_jitter_up_to_the_cap_and_probe_once_per_pause(
    doorman: Doorman, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{doorman.port}/",
        reconnect_interval=0.05,
        reconnect_max=0.4,
        outage_reminder=0.6,
    )
    link = Link(settings)
    with caplog.at_level(logging.DEBUG, logger="{{ cookiecutter.package }}"):
        reconnecting = asyncio.create_task(link.reconnect("connection reset by peer"))
        await asyncio.sleep(3.0)
        reconnecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconnecting

    gaps = [b - a for a, b in itertools.pairwise(doorman.attempts)]
    assert len(gaps) >= 8, doorman.attempts
    # Each pause is 50-100 % of a step that doubles from 0.05 s up to 0.4 s; a failed attempt
    # and its probe add a few milliseconds.
    for gap, step in zip(gaps, [0.1, 0.2, 0.4, 0.4, 0.4, 0.4, 0.4], strict=False):
        assert step / 2 - 0.01 <= gap <= step + 0.1, gaps
    assert max(gaps) <= 0.4 + 0.1  # capped
    assert len({round(gap, 3) for gap in gaps[3:]}) > 1  # jitter: replicas drift apart
    # The port accepts, so each pause probes it once and then just waits: a broker that is up
    # but turns the service away is not pestered.
    assert len(doorman.probes) <= len(doorman.attempts) + 1

    ours = [r for r in caplog.records if r.name.startswith("{{ cookiecutter.package }}")]
    warnings = [r.getMessage() for r in ours if r.levelno == logging.WARNING]
    assert sum("lost the connection" in w for w in warnings) == 1
    reminders = [w for w in warnings if "still unreachable" in w]
    assert 3 <= len(reminders) <= 5  # about every 0.6 s of the 3 s
    assert all(r.levelno < logging.ERROR for r in ours)
    assert link.outage().startswith(f"connection to RabbitMQ at {link.safe_url} lost")


async def test_start_up_retries_within_the_connect_timeout_then_says_what_to_do(
    doorman: Doorman,
) -> None:
    from {{ cookiecutter.package }}.runtime.broker import StartupError

    settings = make_settings(
        amqp_url=f"amqp://guest:secret@127.0.0.1:{doorman.port}/",
        connect_timeout=1.0,
        reconnect_interval=0.05,
        reconnect_max=0.2,
    )
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(StartupError) as caught:
        await Link(settings).open()
    assert 1.0 <= loop.time() - began < 2.0
    assert len(doorman.attempts) >= 4  # it kept trying for the whole second
    message = str(caught.value)
    assert f"127.0.0.1:{doorman.port}" in message
    assert "AMQP_URL" in message
    assert "secret" not in message


async def test_a_broker_back_right_after_a_refused_attempt_is_tried_at_once() -> None:
    refused_port = free_port()  # nothing listens there until the test opens it
    settings = make_settings(
        amqp_url=f"amqp://guest:guest@127.0.0.1:{refused_port}/",
        reconnect_interval=0.2,
        reconnect_max=3.2,
        outage_reminder=0.001,  # a reminder after every failed attempt: the moment to act
    )
    link = Link(settings)
    loop = asyncio.get_running_loop()
    listening: list[socket.socket] = []
    opened: list[float] = []

    class OpenThePortAfterTheThirdRefusal(logging.Handler):
        """Runs between a refused attempt and the probe that starts the next pause."""

        def emit(self, record: logging.LogRecord) -> None:
            if "still unreachable" in record.getMessage() and link.attempts >= 3 and not opened:
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind(("127.0.0.1", refused_port))
                sock.listen()
                listening.append(sock)
                opened.append(loop.time())

    door = Doorman()
    logger = logging.getLogger("{{ cookiecutter.package }}.runtime.amqp.connection")
    handler = OpenThePortAfterTheThirdRefusal()
    logger.addHandler(handler)
    reconnecting = asyncio.create_task(link.reconnect("connection reset by peer"))
    try:

        async def port_opened() -> bool:
            return bool(opened)

        async def attempted() -> bool:
            return bool(door.attempts)

        await eventually(port_opened, within=5)
        async with await asyncio.start_server(door.serve, sock=listening[0]):
            await eventually(attempted, within=5)
    finally:
        logger.removeHandler(handler)
        reconnecting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reconnecting
    # The pause after the third attempt is 0.8 to 1.6 s; but the port refused at the last probe
    # and accepts now, so the next attempt comes at once.
    assert door.attempts[0] - opened[0] < 0.5


async def test_a_lost_node_is_tried_last_in_every_round(doorman: Doorman) -> None:
    lost = doorman
    async with serving() as other:
        settings = make_settings(
            amqp_url=f"amqp://guest:guest@127.0.0.1:{lost.port},127.0.0.1:{other.port}/",
            reconnect_interval=0.05,
            reconnect_max=0.1,
        )
        link = Link(settings)
        assert link.safe_url == f"amqp://guest:***@127.0.0.1:{lost.port}/"  # connected there
        reconnecting = asyncio.create_task(link.reconnect("connection reset by peer"))

        async def rounds() -> bool:
            return len(lost.attempts) >= 4

        try:
            await eventually(rounds, within=5)
        finally:
            reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reconnecting
        assert len(other.attempts) >= len(lost.attempts) >= 4  # each round tries both
        for tried_other, tried_lost in zip(other.attempts, lost.attempts, strict=False):
            assert tried_other < tried_lost
        assert link.outage().startswith(
            f"connection to RabbitMQ at amqp://guest:***@127.0.0.1:{lost.port}/ lost"
        )
        assert "reconnecting to RabbitMQ at any of 2 nodes" in link.outage()


@pytest.mark.rabbitmq
async def test_start_up_finds_the_node_that_is_up_whatever_the_shuffle() -> None:
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    down = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    settings = make_settings(amqp_url=f"{down},{AMQP_URL}", reconnect_interval=0.05)
    up = Link(make_settings(amqp_url=AMQP_URL)).safe_url
    for _ in range(6):  # the order is shuffled: the node that is down comes first at times
        link = Link(settings)
        connection = await link.open()
        await connection.close()
        assert link.safe_url == up
