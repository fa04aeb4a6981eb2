"""All the settings of the service: the runtime's and the service's own, read as one object.

Example use::

    settings = load_settings(["--http-port", "9000"])
    settings.http_port, settings.summary_interval  # a runtime setting, and one of service/

``runtime/settings.py`` holds what the runtime reads, ``service/settings.py`` what your code
reads. Both are read from the same environment variables and flags, with the same errors.
"""

from __future__ import annotations

from collections.abc import Sequence

from .runtime.settings import ENV_PREFIX, SETTINGS, RuntimeSettings, load
from .service.settings import SERVICE_SETTINGS, ServiceSettings

__all__ = ["ENV_PREFIX", "SERVICE_SETTINGS", "SETTINGS", "Settings", "load_settings"]


class Settings(ServiceSettings, RuntimeSettings):
    """Everything the service can be told at start-up: the runtime's fields, then the service's."""


def load_settings(argv: Sequence[str] | None = None) -> Settings:
    """Read the settings from the environment and ``argv``; raise ``ValueError`` naming what is
    wrong. ``argv=None`` reads no flags (the environment alone), which is what tests want."""
    return load(Settings, argv)
