"""The runtime: what runs the service's own code. It belongs to the template, whose updates
replace it (``docs/updating.md``), and nothing here imports from ``service/``.

- ``http``, ``params``, ``problems``, ``openapi``: typed routes and parameters, problem-JSON
  errors, the OpenAPI document;
- ``messaging``, ``topics``: declared events and their handlers, topic patterns;
- ``dispatch``: the ack / retry / dead-letter rules; ``asyncapi``: the AsyncAPI document;
- ``broker``, ``amqp/``, ``memory``: the broker, RabbitMQ or in-process;
- ``tasks``: periodic and long-running background tasks under supervision;
- ``health``, ``metrics``: liveness and readiness, Prometheus metrics;
- ``lifecycle``, ``logs``, ``correlation``: running, shutting down, logging, correlation ids;
- ``tracing``, ``spans``: OpenTelemetry tracing, off unless ``OTEL_*`` variables turn it on;
- ``settings``: the runtime's settings.

``TEMPLATE_VERSION`` is the version of the template this runtime came from; the OpenAPI and
AsyncAPI documents show it as ``info.x-template-version``.
"""

TEMPLATE_VERSION = "{{ template_version }}"
