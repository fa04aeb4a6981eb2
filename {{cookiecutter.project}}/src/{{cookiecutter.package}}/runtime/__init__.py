"""The runtime: what runs the service's own code. You rarely need to change anything here, and
nothing here imports from ``service/``.

- ``http``, ``openapi``: typed routes, problem-JSON errors, the OpenAPI document;
- ``messaging``: event handlers and the ack / retry / dead-letter rules;
- ``broker``, ``amqp/``, ``memory``: the broker, RabbitMQ or in-process;
- ``tasks``: periodic and long-running background tasks under supervision;
- ``health``: liveness and readiness;
- ``lifecycle``, ``logs``: running, shutting down, logging.
"""
