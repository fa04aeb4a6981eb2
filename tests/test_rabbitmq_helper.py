"""The throwaway RabbitMQ the test command starts: one clear line when it cannot, and nothing
left behind when it stops."""

from __future__ import annotations

from pathlib import Path

import pytest

from . import rabbitmq
from .rabbitmq import HOW_TO_PROVIDE, RabbitMQUnavailable, ThrowawayRabbitMQ, amqp_answers


def test_no_server_and_no_root_fails_with_one_line_saying_how(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rabbitmq, "find_tool", lambda name: None)
    monkeypatch.setattr(rabbitmq.os, "geteuid", lambda: 1000)
    with pytest.raises(RabbitMQUnavailable) as caught:
        rabbitmq.ensure_installed()
    message = str(caught.value)
    assert message == HOW_TO_PROVIDE
    assert "\n" not in message
    assert "AMQP_URL" in message and "rabbitmq-server" in message and "docker run" in message


def test_node_answers_while_up_and_leaves_nothing_when_stopped(amqp_url: str) -> None:
    # amqp_url: the session's node is up first, so this one shares its epmd, as in real runs.
    node = ThrowawayRabbitMQ()
    node.start()
    folder = node._folder
    assert folder is not None and folder.is_dir()
    assert amqp_answers(node.port)
    assert node.url == f"amqp://guest:guest@127.0.0.1:{node.port}/"
    node.stop()
    assert not amqp_answers(node.port)
    assert not Path(folder).exists()
    node.stop()  # safe twice
