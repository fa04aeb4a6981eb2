"""Whether the service traces, from the standard OpenTelemetry variables; ``spans.py`` makes the
spans. Tracing is off unless the environment asks for it, and then nothing of OpenTelemetry is
imported and no request or message pays for it. It is on when

- ``OTEL_TRACES_EXPORTER`` names ``otlp`` (OTLP over HTTP/protobuf) or ``console``, or
- ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set (``otlp``),

unless ``OTEL_SDK_DISABLED=true``. The SDK reads the other ``OTEL_*`` variables as it documents
them: service name and resource attributes, sampler, batch sizes, OTLP headers and timeout.
Example use::

    tracing = from_environment(os.environ, settings, "1.0.0")  # None while tracing is off
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .broker import StartupError
from .settings import RuntimeSettings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from .spans import Tracing

EXPORTERS = ("otlp", "console")
_global_provider_set = False


def exporters(environ: Mapping[str, str]) -> list[str]:
    """The span exporters the environment asks for; none means tracing is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",")]
    names = [name for name in names if name]
    endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    )
    if not names and endpoint:
        names = ["otlp"]
    unknown = [name for name in names if name not in (*EXPORTERS, "none")]
    if unknown:
        raise StartupError(
            f"OTEL_TRACES_EXPORTER={unknown[0]} is not an exporter this service has; use "
            "otlp (OTLP over HTTP), console or none"
        )
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if "otlp" in names and protocol != "http/protobuf":
        raise StartupError(
            f"OTLP protocol {protocol!r} is not installed; this service exports traces over "
            "http/protobuf (port 4318): unset OTEL_EXPORTER_OTLP_PROTOCOL or set it to that"
        )
    return [name for name in names if name != "none"]


def from_environment(
    environ: Mapping[str, str], settings: RuntimeSettings, version: str
) -> Tracing | None:
    """The service's tracing as the environment asks for it, or None when it is off. The
    first one made in a process also becomes OpenTelemetry's global tracer provider, so that
    ``trace.get_tracer(__name__)`` in the service's code adds spans to the same traces."""
    names = exporters(environ)
    if not names:
        return None
    from .spans import Tracing, provider

    global _global_provider_set
    tracer_provider = provider(names, settings.service_name, version)
    if not _global_provider_set:
        from opentelemetry import trace

        trace.set_tracer_provider(tracer_provider)
        _global_provider_set = True
    return Tracing(tracer_provider, settings)


def tracing_for(
    settings: RuntimeSettings, version: str, tracer_provider: TracerProvider | None
) -> Tracing | None:
    """Spans to ``tracer_provider`` if one is given (the runtime's tests do), else as this
    process's environment asks (``from_environment``)."""
    if tracer_provider is None:
        return from_environment(os.environ, settings, version)
    from .spans import Tracing

    return Tracing(tracer_provider, settings)
