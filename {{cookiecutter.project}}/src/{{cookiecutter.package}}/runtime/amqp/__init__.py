"""RabbitMQ through aio-pika, one module per responsibility:

- ``connection``: connecting, reconnecting with backoff, and telling an outage in the log;
- ``topology``: the exchange, queues and bindings the service declares;
- ``publishing``: confirmed publishes, and the copies that retry and dead-letter a message;
- ``consuming``: deliveries to the dispatcher, and settling them;
- ``broker``: the ``Broker`` made of those parts, and the keeper that repairs what breaks.

Only public aio-pika and aiormq API is used, so a new aio-pika release cannot silently change
how the service recovers. Example use::

    broker = AmqpBroker(settings, dispatcher, events, metrics)
    await broker.connect()
"""

from .broker import AmqpBroker

__all__ = ["AmqpBroker"]
