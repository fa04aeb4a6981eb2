"""The command line. Example use::

    {{ cookiecutter.project }} --help
    python -m {{ cookiecutter.package }} --amqp-url memory://

Exit status: 0 after a graceful shutdown, 1 if the service could not start, 2 for bad settings.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from .app import create_app
from .runtime.broker import StartupError
from .runtime.lifecycle import serve
from .runtime.logs import configure_logging
from .settings import load_settings

log = logging.getLogger("{{ cookiecutter.package }}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the service until SIGTERM or SIGINT; return the exit status."""
    try:
        settings = load_settings(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        print(f"{{ cookiecutter.project }}: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        serve(create_app(settings), settings)
    except StartupError as exc:
        log.error("cannot start: %s", exc)
        return 1
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.http_host, settings.http_port, exc)
        return 1
    log.info("stopped")
    return 0
