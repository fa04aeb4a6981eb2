"""The runtime's settings, and how a settings class is read from the environment and flags.

Every field is an environment variable, prefixed with ``ENV_PREFIX``, and a flag in kebab case;
a flag wins over the environment. The service's own settings (``service/settings.py``) join
these in one class, ``settings.Settings``, which is read the same way. Example use::

    settings = load(RuntimeSettings, ["--http-port", "9000"])
    settings.http_port  # 9000; without the flag, <ENV_PREFIX>HTTP_PORT or the default
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.util import find_spec
from typing import Literal, TypeVar

from aiohttp import web
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

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
        description="RabbitMQ URL, or memory:// for the in-process broker",
    )
    exchange: str = Field(
        default="{{ cookiecutter.exchange }}",
        min_length=1,
        description="topic exchange shared by the services that talk to each other",
    )
    queue_type: Literal["quorum", "classic"] = Field(
        default="quorum", description="type of the service queue; quorum is replicated in a cluster"
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
    def _known_scheme(cls, url: SecretStr) -> SecretStr:
        scheme = url.get_secret_value().partition("://")[0].lower()
        if scheme not in ("amqp", "amqps", "memory"):
            raise ValueError("use an amqp://, amqps:// or memory:// URL")
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


def _describe(exc: ValidationError) -> str:
    lines = ["invalid settings:"]
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        flag = "--" + field.replace("_", "-")
        shown = "***" if field == "amqp_url" else repr(error.get("input"))
        lines.append(f"  {ENV_PREFIX}{field.upper()} ({flag}): {error['msg']}, got {shown}")
    return "\n".join(lines)
