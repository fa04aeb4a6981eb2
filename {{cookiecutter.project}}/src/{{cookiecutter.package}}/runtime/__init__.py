"""The runtime: what runs the service's own code. It belongs to the template, whose updates
replace it (``docs/updating.md``), and nothing here imports from ``service/``.

- ``http``, ``openapi``: typed routes, problem-JSON errors, the OpenAPI document;
- ``messaging``: event handlers and the ack / retry / dead-letter rules;
- ``broker``, ``amqp/``, ``memory``: the broker, RabbitMQ or in-process;
- ``tasks``: periodic and long-running background tasks under supervision;
- ``health``: liveness and readiness;
- ``lifecycle``, ``logs``: running, shutting down, logging;
- ``settings``: the runtime's settings.

``TEMPLATE_VERSION`` is the version of the template this runtime came from; the OpenAPI
document shows it as ``info.x-template-version``.
"""

TEMPLATE_VERSION = "{{ template_version }}"
