"""Settings from the environment and the command line, and errors that name the variable."""

from __future__ import annotations

import pytest

from {{ cookiecutter.package }}.runtime import settings as runtime_settings
from {{ cookiecutter.package }}.settings import ENV_PREFIX, load_settings


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}HTTP_PORT", "9001")
    monkeypatch.setenv(f"{ENV_PREFIX}LOG_FORMAT", "json")
    settings = load_settings(["--http-port", "9002"])
    assert settings.http_port == 9002
    assert settings.log_format == "json"


def test_invalid_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}HTTP_PORT", "eighty")
    with pytest.raises(ValueError, match=f"{ENV_PREFIX}HTTP_PORT \\(--http-port\\)") as caught:
        load_settings([])
    assert "'eighty'" in str(caught.value)


def test_out_of_range_flag_is_rejected() -> None:
    with pytest.raises(ValueError, match="--prefetch"):
        load_settings(["--prefetch", "0"])


def test_unknown_flag_is_rejected() -> None:
    with pytest.raises(ValueError, match="--no-such-flag"):
        load_settings(["--no-such-flag", "1"])


def test_amqp_url_of_another_scheme_is_rejected_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}AMQP_URL", "http://admin:hunter2@rabbit:5672/")
    with pytest.raises(ValueError, match=f"{ENV_PREFIX}AMQP_URL") as caught:
        load_settings([])
    assert "is not an amqp:// or amqps:// URL (or memory://)" in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("amqp://u:hunter2@a,amqp://u:hunter2@b:none/", "node 2 of 2, 'amqp://u:***@b:none/',"),
        ("amqp://u:hunter2@a, b c ,d/vhost", "host 2 of 3, 'b c', has no valid host"),
        ("amqp://u:hunter2@a,,c/", "host 2 of 3, '', has no valid host"),
        ("amqp://u:hunter2@a/vhost,b", "in a list of hosts the vhost goes after the last host"),
        ("amqp://u:hunter2@a,http://b/", "node 2 of 2, 'http://b/', is not an amqp://"),
        ("memory://,amqp://b/", "memory:// is the in-process broker; it takes no other nodes"),
    ],
)
def test_a_malformed_node_is_named_without_the_password(
    monkeypatch: pytest.MonkeyPatch, value: str, named: str
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}AMQP_URL", value)
    with pytest.raises(ValueError, match=f"{ENV_PREFIX}AMQP_URL") as caught:
        load_settings([])
    assert named in str(caught.value)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("value", "nodes"),
    [
        ("amqp://u:p@rabbit/", ["amqp://u:p@rabbit/"]),
        (
            "amqps://u:p@a:5671,b,c:5673/fleet?heartbeat=5",
            [
                "amqps://u:p@a:5671/fleet?heartbeat=5",
                "amqps://u:p@b/fleet?heartbeat=5",
                "amqps://u:p@c:5673/fleet?heartbeat=5",
            ],
        ),
        ("amqp://u:p@a/, amqp://v:q@b:5673/", ["amqp://u:p@a/", "amqp://v:q@b:5673/"]),
    ],
)
def test_a_cluster_is_given_as_urls_or_as_hosts(
    monkeypatch: pytest.MonkeyPatch, value: str, nodes: list[str]
) -> None:
    monkeypatch.setenv(f"{ENV_PREFIX}AMQP_URL", value)
    assert load_settings([]).amqp_nodes == nodes


def test_uvloop_where_it_is_not_installed_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_settings, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match=f"{ENV_PREFIX}EVENT_LOOP.*uvloop is not installed"):
        load_settings(["--event-loop", "uvloop"])
    assert load_settings(["--event-loop", "auto"]).event_loop == "auto"  # then asyncio's own
