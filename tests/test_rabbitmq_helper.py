"""The throwaway RabbitMQ the test command starts: one clear line when it cannot, and nothing
left behind when it stops."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from . import rabbitmq as helper
from .conftest import Broker
from .rabbitmq import HOW_TO_PROVIDE, RabbitMQUnavailable, ThrowawayRabbitMQ, amqp_answers


def test_no_server_and_no_root_fails_with_one_line_saying_how(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(helper, "find_tool", lambda name: None)
    monkeypatch.setattr(helper.os, "geteuid", lambda: 1000)
    with pytest.raises(RabbitMQUnavailable) as caught:
        helper.ensure_installed()
    message = str(caught.value)
    assert message == HOW_TO_PROVIDE
    assert "\n" not in message
    assert "AMQP_URL" in message and "rabbitmq-server" in message and "docker run" in message


def test_a_cluster_where_rabbitmq_is_not_installed_fails_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    generated = helper._generated  # the generated project's helper never installs anything
    monkeypatch.setattr(generated, "find_tool", lambda name: None)
    cluster = helper.ThrowawayCluster()
    with pytest.raises(RabbitMQUnavailable) as caught:
        cluster.start()
    assert str(caught.value) == generated.NOT_INSTALLED
    assert "apt-get install rabbitmq-server" in str(caught.value)
    assert cluster.folder is None  # nothing was created


def test_node_restarts_and_leaves_nothing_when_stopped(
    rabbitmq: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # rabbitmq: the session's broker is up first, so this node shares its epmd, as in real runs.
    caller = tmp_path / "caller"
    caller.mkdir()
    monkeypatch.chdir(caller)  # the helper must write nothing where it was called from
    node = ThrowawayRabbitMQ()
    try:
        node.start()
        folder = node.folder
        assert folder is not None and folder.is_dir()
        assert amqp_answers(node.port)
        assert node.url == f"amqp://guest:guest@127.0.0.1:{node.port}/"
        restart = subprocess.run(node.restart_command, shell=True, capture_output=True, check=False)
        assert restart.returncode == 0, restart.stderr
        assert amqp_answers(node.port)

        # A second node of the same name crashes at boot, and the VM writes erl_crash.dump.
        twin = ThrowawayRabbitMQ(start_timeout=60, node=node.node)
        with pytest.raises(RabbitMQUnavailable, match="did not start"):
            twin.start()
        assert twin.folder is None  # its folder, crash dump included, is gone
    finally:
        node.stop()  # also when an assertion failed: a node left running outlives the tests
    assert not amqp_answers(node.port)
    assert not Path(folder).exists()
    node.stop()  # safe twice
    assert list(caller.iterdir()) == []
