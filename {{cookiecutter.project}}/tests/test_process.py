"""The service as real processes (``tests/harness.py``) against a real broker: SIGTERM with work
in flight, competing replicas, one killed mid-stream, and a broker restart mid-stream.

Every test counts messages by id: each must be handled (duplicates are allowed, since delivery
is at least once, and counted), or still be in the queue; none may be lost.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aio_pika
import aiohttp
import pytest

from .conftest import AMQP_URL, eventually, queued, wait_ready
from .proxy import Proxy
from .test_main import free_port

ROOT = Path(__file__).resolve().parent.parent
RESTART_COMMAND = os.environ.get("AMQP_RESTART_COMMAND", "")

needs_rabbitmq = pytest.mark.skipif(not AMQP_URL, reason="set AMQP_URL to a RabbitMQ to run this")


@dataclass
class Service:
    """One harness process and what it printed."""

    process: asyncio.subprocess.Process
    port: int
    handled: Counter[int] = field(default_factory=Counter)
    log: list[str] = field(default_factory=list)
    _readers: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def wait(self, within: float) -> int:
        code = await asyncio.wait_for(self.process.wait(), within)
        await asyncio.gather(*self._readers)
        return code


async def launch(name: str, amqp_url: str, *flags: str, exchange: str = "") -> Service:
    """A harness process named ``name``, on ``exchange`` (``<name>.events`` by default)."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.harness",
        "--service-name", name, "--exchange", exchange or f"{name}.events", "--amqp-url", amqp_url,
        "--http-host", "127.0.0.1", "--http-port", str(port), *flags,
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    service = Service(process, port)

    async def read_handled(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            text = line.decode().strip()
            if text.startswith("handled "):
                service.handled[int(text.split()[1])] += 1

    async def read_log(stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            service.log.append(line.decode().rstrip())

    assert process.stdout is not None
    assert process.stderr is not None
    service._readers = [
        asyncio.create_task(read_handled(process.stdout)),
        asyncio.create_task(read_log(process.stderr)),
    ]
    await wait_ready(service.url, process, service.log)
    return service


@pytest.fixture
async def name() -> AsyncIterator[str]:
    """A service name of the test's own; its queues and exchange are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    yield name
    if AMQP_URL:
        async with await aio_pika.connect(AMQP_URL) as connection:
            channel = await connection.channel()
            for queue in (name, f"{name}.retry", f"{name}.dead-letter"):
                await channel.queue_delete(queue, if_unused=False, if_empty=False)
            await channel.exchange_delete(f"{name}.events", if_unused=False)


async def publish_jobs(name: str, ids: range, seconds: float) -> None:
    """Publish one job per id, returning once RabbitMQ has confirmed them all.

    Confirms, because closing an aio-pika connection drops what it has not written yet: an
    unconfirmed publish returns before its message left the process. They are all in flight at
    once, so the queue still fills faster than the service drains it.
    """
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(f"{name}.events")

        def job(i: int) -> aio_pika.Message:
            body = json.dumps({"id": i, "seconds": seconds}).encode()
            return aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)

        await asyncio.gather(*(exchange.publish(job(i), routing_key="test.job") for i in ids))


async def test_sigterm_finishes_http_and_messages_in_flight_and_exits_0(name: str) -> None:
    service = await launch(
        name, AMQP_URL or "memory://", "--shutdown-timeout", "3", "--stubborn-task"
    )
    if AMQP_URL:
        await publish_jobs(name, range(20), seconds=1.0)  # in flight at SIGTERM; they finish
        await publish_jobs(name, range(20, 25), seconds=60)  # cannot finish: back to the queue
        await asyncio.sleep(0.5)  # let every handler start
    async with aiohttp.ClientSession() as session:
        slow = asyncio.create_task(session.get(f"{service.url}/test/slow?seconds=1"))
        await asyncio.sleep(0.2)  # the request is in flight
        loop = asyncio.get_running_loop()
        began = loop.time()
        service.process.send_signal(signal.SIGTERM)
        response = await slow
        assert response.status == 200
        assert await response.json() == {"slow": "done"}
    code = await service.wait(within=15)
    log = "\n".join(service.log)
    assert code == 0, log
    assert loop.time() - began < 3 + 2.5, log  # the shutdown budget, the stubborn task's 1 s, slack
    assert "task task:stubborn ignored cancellation" in log
    if AMQP_URL:
        assert set(service.handled) == set(range(20))
        assert await queued(name) == 5  # unacked, so redelivered to the next consumer


@needs_rabbitmq
async def test_competing_replicas_share_the_stream_and_a_killed_one_loses_nothing(
    name: str,
) -> None:
    first = await launch(name, AMQP_URL, "--prefetch", "20")
    second = await launch(name, AMQP_URL, "--prefetch", "20")
    total = 2000
    await publish_jobs(name, range(total), seconds=0.005)

    async def both_working() -> bool:
        return sum(first.handled.values()) > 100 and sum(second.handled.values()) > 100

    await eventually(both_working, within=20)
    first.process.kill()  # no shutdown at all: its unacked messages go back to the queue
    await first.wait(within=10)

    async def all_handled() -> bool:
        return set(first.handled) | set(second.handled) == set(range(total))

    await eventually(all_handled, within=30)
    second.process.send_signal(signal.SIGTERM)
    assert await second.wait(within=15) == 0
    both = first.handled + second.handled
    duplicates = sum(count - 1 for count in both.values())
    assert duplicates <= 20  # at most the killed replica's prefetch was delivered twice
    assert await queued(name) == 0


@needs_rabbitmq
@pytest.mark.skipif(
    not RESTART_COMMAND, reason="set AMQP_RESTART_COMMAND to a command that restarts RabbitMQ"
)
async def test_broker_restart_mid_stream_loses_nothing(name: str) -> None:
    # The default reconnection settings: recovery must not wait on a long backoff pause.
    service = await launch(name, AMQP_URL, "--prefetch", "5")
    total = 3000
    await publish_jobs(name, range(total), seconds=0.02)  # about 12 s of work at prefetch 5
    statuses: list[int] = []
    last_report: list[str] = [""]
    live_failures: list[str] = []
    stop = asyncio.Event()

    async def watch() -> None:
        async with aiohttp.ClientSession() as session:
            while not stop.is_set():
                try:
                    async with session.get(f"{service.url}/health/live") as live:
                        if live.status != 200:
                            live_failures.append(str(live.status))
                    async with session.get(f"{service.url}/health/ready") as ready:
                        statuses.append(ready.status)
                        last_report[0] = await ready.text()
                except aiohttp.ClientError as exc:
                    live_failures.append(repr(exc))
                await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())

    async def under_way() -> bool:
        return len(service.handled) > 200

    await eventually(under_way, within=20)
    assert await queued(name) > 1000  # the restart comes mid-stream
    restart = await asyncio.create_subprocess_shell(RESTART_COMMAND)
    assert await asyncio.wait_for(restart.wait(), 120) == 0
    loop = asyncio.get_running_loop()
    back = loop.time()  # the command returns once RabbitMQ accepts connections again

    async def all_handled() -> bool:
        return set(service.handled) == set(range(total))

    async def ready_again() -> bool:
        return statuses[-1:] == [200] and 503 in statuses

    await eventually(ready_again, within=30)
    lag = loop.time() - back
    await eventually(all_handled, within=60)
    stop.set()
    await watcher
    service.process.send_signal(signal.SIGTERM)
    assert await service.wait(within=15) == 0
    assert live_failures == []  # the REST API answered throughout
    assert 503 in statuses  # readiness saw the broker go away ...
    assert statuses[-1] == 200, (last_report[0], "\n".join(service.log[-40:]))  # ... and back
    assert statuses.index(503) < len(statuses) - 1 - statuses[::-1].index(200)
    assert lag < 3.0, f"ready {lag:.1f}s after RabbitMQ was back"
    duplicates = sum(count - 1 for count in service.handled.values())
    assert duplicates <= 5 * 2  # what was in flight when the connection dropped


async def test_an_outage_is_one_warning_reminders_and_one_info_never_an_error(
    name: str, proxy: Proxy
) -> None:
    service = await launch(
        name, proxy.url(AMQP_URL), "--reconnect-interval", "0.2", "--reconnect-max", "0.5",
        "--outage-reminder", "1",
    )  # fmt: skip
    await proxy.cut()
    await asyncio.sleep(3.5)  # some ten failed attempts; a reminder after those a second apart
    await proxy.restore()
    await wait_ready(service.url, service.process, service.log)
    service.process.send_signal(signal.SIGTERM)
    assert await service.wait(within=15) == 0
    log = "\n".join(service.log)
    outage = service.log[next(i for i, line in enumerate(service.log) if "lost" in line) :]
    levels = Counter(line.split()[2] for line in outage)
    assert sum("lost the connection to RabbitMQ" in line for line in outage) == 1, log
    [back] = [line for line in outage if " INFO " in line and "is back after" in line]
    found = re.search(r"and (\d+) attempt", back)
    assert found is not None, back
    attempts = int(found.group(1))
    reminders = sum("still unreachable" in line for line in outage)
    assert 1 <= reminders <= 4 < attempts, log  # reminded, but not once per attempt
    assert levels["ERROR"] == levels["CRITICAL"] == 0, log
    assert levels["WARNING"] <= 1 + 4, log  # nothing but the loss and the reminders
    assert not any(" aiormq" in line or " aio_pika" in line for line in service.log), log
