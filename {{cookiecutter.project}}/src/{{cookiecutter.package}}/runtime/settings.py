"""The runtime's settings, and how a settings class is read from the environment and flags.

Every field is an environment variable, prefixed with ``ENV_PREFIX``, and a flag in kebab case;
a flag wins over the environment. The service's own settings (``service/settings.py``) join
these in one class, ``settings.Settings``, which is read the same way. Example use::

    settings = load(RuntimeSettings, ["--http-port", "9000"])
    settings.http_port  # 9000; without the flag, <ENV_PREFIX>HTTP_PORT or the default
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from importlib.util import find_spec
from typing import Literal, TypeVar

from aiohttp import web
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError
from yarl import URL

ENV_PREFIX = "{{ cookiecutter.package | upper }}_"


class RuntimeSettings(BaseSettings):
    """What the runtime can be told at start-up: the REST server, RabbitMQ, tasks, logs."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        cli_prog_name="{{ cookiecutter.project }}",
        cli_kebab_case=True,
        cli_implicit_flags=True,
        cli_exit_on_error=False,
        extra="ignore",
    )

    # Identity: the durable queue, the retry and dead-letter queues and the connection name.
    service_name: str = Field(
        default="{{ cookiecutter.project }}",
        min_length=1,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="name of the service's queues and of its connection in RabbitMQ",
    )

    # REST API
    http_host: str = Field(default="0.0.0.0", description="address the REST API listens on")
    http_port: int = Field(
        default={{ cookiecutter.http_port }},
        ge=1,
        le=65535,
        description="TCP port of the REST API",
    )
    max_body_size: int = Field(
        default=1024 * 1024, ge=1, description="largest request body in bytes; larger gets 413"
    )

    # AMQP
    amqp_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@localhost:5672/"),
        description="RabbitMQ URL; for a cluster, the nodes' URLs comma-separated, or one URL "
        "with comma-separated hosts (amqp://user:pass@node1,node2:5673,node3/vhost); or "
        "memory:// for the in-process broker",
    )
    exchange: str = Field(
        default="{{ cookiecutter.exchange }}",
        min_length=1,
        description="topic exchange shared by the services that talk to each other",
    )
    queue_type: Literal["quorum", "classic"] = Field(
        default="quorum", description="type of the service queue; quorum is replicated in a cluster"
    )
    quorum_group_size: int = Field(
        default=3,
        ge=0,
        description="nodes that hold a replica of each quorum queue the service declares; 0 "
        "declares the queues as template 3 did (RabbitMQ's group size, a classic retry queue)",
    )
    prefetch: int = Field(default=100, ge=1, le=65535, description="unacked deliveries at most")
    max_attempts: int = Field(
        default=3, ge=1, description="handler runs of one message before it is dead-lettered"
    )
    retry_delay: float = Field(
        default=5.0, gt=0, description="seconds before a failed message is retried"
    )
    delivery_limit: int = Field(
        default=20,
        ge=1,
        description="redeliveries RabbitMQ allows a quorum-queue message (a crash-loop guard)",
    )
    publish_timeout: float = Field(
        default=5.0, gt=0, description="seconds a publish may wait for the broker's confirm"
    )
    connect_timeout: float = Field(
        default=10.0, gt=0, description="seconds to reach RabbitMQ at start-up before giving up"
    )
    heartbeat: int = Field(
        default=10,
        ge=1,
        description="AMQP heartbeat in seconds; a dead link is noticed in about 2x",
    )
    reconnect_interval: float = Field(
        default=1.0,
        gt=0,
        description="seconds before the first reconnection attempt, and between probes of a "
        "RabbitMQ that refuses connections",
    )
    reconnect_max: float = Field(
        default=30.0, gt=0, description="longest pause between reconnection attempts"
    )
    outage_reminder: float = Field(
        default=60.0,
        gt=0,
        description="seconds between log reminders while RabbitMQ stays unreachable",
    )

    # Background tasks and shutdown
    task_backoff_max: float = Field(
        default=60.0, gt=0, description="longest pause before a failing task is restarted"
    )
    task_unhealthy_after: float = Field(
        default=60.0,
        gt=0,
        description="seconds a task may fail continuously before readiness is 503",
    )
    task_recovered_after: float = Field(
        default=10.0,
        gt=0,
        description="seconds a restarted long-running task must run without failing to count "
        "as recovered",
    )
    shutdown_timeout: float = Field(
        default=10.0, gt=0, description="seconds in-flight work may take to finish on SIGTERM"
    )
    event_loop: Literal["auto", "uvloop", "asyncio"] = Field(
        default="auto",
        description="auto: uvloop where it is installed (Linux, macOS), else asyncio's own",
    )

    # Logging and metrics
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = Field(
        default="text", description="text for people, json for a log collector"
    )
    metrics_enabled: bool = Field(
        default=True, description="serve Prometheus metrics at GET /metrics"
    )

    @field_validator("amqp_url")
    @classmethod
    def _nodes_known(cls, url: SecretStr) -> SecretStr:
        split_nodes(url.get_secret_value())
        return url

    @field_validator("event_loop")
    @classmethod
    def _installed(cls, choice: str) -> str:
        if choice == "uvloop" and find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed here; use auto or asyncio")
        return choice

    @property
    def in_process_broker(self) -> bool:
        """Whether ``amqp_url`` asks for the in-process broker (``memory://``)."""
        return self.amqp_url.get_secret_value().lower().startswith("memory://")

    @property
    def amqp_nodes(self) -> list[str]:
        """The URL of each RabbitMQ node in ``amqp_url``, in the order given."""
        return split_nodes(self.amqp_url.get_secret_value())


SETTINGS = web.AppKey("settings", RuntimeSettings)

AnySettings = TypeVar("AnySettings", bound=RuntimeSettings)


def load(cls: type[AnySettings], argv: Sequence[str] | None = None) -> AnySettings:
    """Read ``cls`` from the environment and ``argv``; raise ``ValueError`` naming what is wrong.

    ``argv=None`` reads no flags (the environment alone), which is what tests want.
    """
    try:
        if argv is None:
            return cls()
        return cls(_cli_parse_args=list(argv))
    except ValidationError as exc:
        raise ValueError(_describe(exc)) from None
    except SettingsError as exc:
        raise ValueError(f"invalid command line: {exc}") from None


HOST = re.compile(r"^[A-Za-z0-9._:-]+$")  # a name, an IPv4 address, or IPv6 without brackets


def split_nodes(value: str) -> list[str]:
    """The node URLs in an ``amqp_url`` value: one URL, comma-separated URLs, or one URL with
    comma-separated hosts, all of which share its scheme, credentials, vhost and query.

    Raise ``ValueError`` naming the entry that is not a node, with its password hidden.
    """
    entries = [entry.strip() for entry in value.split(",")]
    if entries[0].lower().startswith("memory://"):
        if len(entries) > 1:
            raise ValueError("memory:// is the in-process broker; it takes no other nodes")
        return entries
    count = len(entries)
    if count > 1 and all("://" not in entry for entry in entries[1:]):
        hosts, urls = _hosts_to_urls(entries)
        named = [f"host {n} of {count}, {host!r}," for n, host in enumerate(hosts, 1)]
    else:
        urls = entries
        named = [f"node {n} of {count}, {_hidden(url)!r}," for n, url in enumerate(urls, 1)]
        if count == 1:
            named = [repr(_hidden(entries[0]))]
    for url, name in zip(urls, named, strict=True):
        _check_node(url, name)
    return urls


def _hosts_to_urls(entries: list[str]) -> tuple[list[str], list[str]]:
    """``amqp://u:p@a,b:5673/vhost``: the hosts ``a``, ``b:5673``, and their URLs
    ``amqp://u:p@a/vhost``, ``amqp://u:p@b:5673/vhost``."""
    scheme, _, first = entries[0].partition("://")
    credentials, at, first_host = first.rpartition("@")
    if re.search(r"[/?]", first_host):
        raise ValueError(
            f"host 1 of {len(entries)}, {_hidden(entries[0])!r}: in a list of hosts the vhost "
            "goes after the last host"
        )
    last_host, *suffix = re.split(r"(?=[/?])", entries[-1], maxsplit=1)
    hosts = [first_host, *entries[1:-1], last_host]
    urls = [f"{scheme}://{credentials}{at}{host}{''.join(suffix)}" for host in hosts]
    return hosts, urls


def _check_node(url: str, name: str) -> None:
    if url.partition("://")[0].lower() not in ("amqp", "amqps"):
        raise ValueError(f"{name} is not an amqp:// or amqps:// URL (or memory://)")
    try:
        host = URL(url).raw_host or ""
    except ValueError as exc:
        raise ValueError(f"{name} is not a valid node: {exc}") from None
    if not HOST.match(host):
        raise ValueError(f"{name} has no valid host")


def _hidden(entry: str) -> str:
    """``entry`` with the password, if any, shown as ``***``."""
    return re.sub(r"^([^:/]*://[^:@/]*):[^@/]*@", r"\1:***@", entry)


def _describe(exc: ValidationError) -> str:
    lines = ["invalid settings:"]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        flag = "--" + field.replace("_", "-")
        shown = "***" if field == "amqp_url" else repr(error.get("input"))
        lines.append(f"  {ENV_PREFIX}{field.upper()} ({flag}): {error['msg']}, got {shown}")
    return "\n".join(lines)
