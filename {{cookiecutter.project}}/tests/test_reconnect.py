"""Reconnection backs off exponentially with jitter, and starts again from the base after a
successful connect. No broker needed: the delays are computed from the connection's clock."""

from __future__ import annotations

import asyncio

import pytest
from yarl import URL

from {{ cookiecutter.package }}.runtime.amqp import BackoffConnection


async def test_pause_grows_with_the_outage_and_has_jitter(monkeypatch: pytest.MonkeyPatch) -> None:
    connection = BackoffConnection(URL("amqp://guest:guest@127.0.0.1:1/"), reconnect_interval=0.5)
    connection.reconnect_max = 8.0
    loop = asyncio.get_running_loop()
    now = loop.time()
    monkeypatch.setattr(loop, "time", lambda: now)
    assert all(0.25 <= connection.reconnect_interval <= 0.5 for _ in range(50))

    connection._down_since = now  # the link just dropped
    for down_for, low, high in ((0.0, 0.25, 0.5), (3.0, 1.5, 3.0), (6.0, 3.0, 6.0), (100, 4, 8)):
        monkeypatch.setattr(loop, "time", lambda d=down_for: now + d)
        pauses = {connection.reconnect_interval for _ in range(50)}
        assert all(low <= pause <= high for pause in pauses)
        assert len(pauses) > 1  # jitter: replicas do not retry in step

    connection._down_since = None  # connected again: back to the base interval
    assert all(0.25 <= connection.reconnect_interval <= 0.5 for _ in range(50))
