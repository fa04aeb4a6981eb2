"""What the service declares on RabbitMQ, at start-up and again after every reconnect:

- the topic exchange ``settings.exchange``, shared by the services that talk to each other;
- the service queue ``<service_name>``, durable (quorum by default, on ``quorum_group_size``
  nodes of a cluster), bound once per handler pattern; messages RabbitMQ itself rejects go to
  the dead-letter queue;
- ``<service_name>.retry``: failed messages wait there ``retry_delay`` seconds (a per-message
  TTL), then RabbitMQ moves them back to the service queue alone, not to every subscriber;
  it is replicated as the service queue is, and both dead-letter at least once;
- ``<service_name>.dead-letter``: messages no retry can fix, with headers that say why.

Example use::

    topology = Topology(settings, events.patterns)
    exchange = await topology.declare_exchange(publishing_channel)
    queue = await topology.declare_queues(consuming_channel)  # and binds it
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue

from ..settings import RuntimeSettings


@dataclass(frozen=True)
class QueueNames:
    """The service's three queues."""

    service: str
    retry: str
    dead_letter: str

    @classmethod
    def of(cls, service_name: str) -> QueueNames:
        return cls(service_name, f"{service_name}.retry", f"{service_name}.dead-letter")


class Topology:
    """Declares the exchange, the queues and the bindings of one service."""

    def __init__(self, settings: RuntimeSettings, patterns: list[str]) -> None:
        self.names = QueueNames.of(settings.service_name)
        self.exchange = settings.exchange
        self.patterns = patterns
        self._queue_type = settings.queue_type
        self._prefetch = settings.prefetch
        self._delivery_limit = settings.delivery_limit
        self._group_size = settings.quorum_group_size

    async def declare_exchange(self, channel: AbstractChannel) -> AbstractExchange:
        """The shared topic exchange, declared on ``channel``."""
        return await channel.declare_exchange(
            self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )

    async def declare_queues(self, channel: AbstractChannel) -> AbstractQueue:
        """Set the prefetch of ``channel``, declare the three queues and bind the service queue.

        The exchange must exist; ``declare_exchange`` on any channel of the connection does it.
        """
        names = self.names
        await channel.set_qos(prefetch_count=self._prefetch)
        replicated: dict[str, Any] = {"x-queue-type": self._queue_type}
        dead_lettering: dict[str, Any] = {}
        if self._queue_type == "quorum" and self._group_size:
            # Explicit, so that a queue declared while nodes were down still gets its replicas
            # (RabbitMQ places them on the nodes running at declaration, up to this many).
            replicated["x-quorum-initial-group-size"] = self._group_size
            # A quorum queue dead-letters at most once by default: a message is dropped if the
            # target queue is unavailable. At least once needs reject-publish overflow.
            dead_lettering = {
                "x-dead-letter-strategy": "at-least-once",
                "x-overflow": "reject-publish",
            }
        await channel.declare_queue(names.dead_letter, durable=True, arguments=replicated)
        # The retry queue is replicated as the service queue is: on a single node of a cluster,
        # its node's loss would stop the consumer, which declares it. Template 3 (and group size
        # 0) kept it classic.
        retry_type = replicated if dead_lettering else {"x-queue-type": "classic"}
        await channel.declare_queue(
            names.retry,
            durable=True,
            arguments={
                **retry_type,
                **dead_lettering,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": names.service,
            },
        )
        arguments: dict[str, Any] = {
            **replicated,
            **dead_lettering,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": names.dead_letter,
        }
        if self._queue_type == "quorum":
            # Bounds redelivery of a message that crashes the process before any ack.
            arguments["x-delivery-limit"] = self._delivery_limit
        queue = await channel.declare_queue(names.service, durable=True, arguments=arguments)
        await self.bind(queue)
        return queue

    def declared_by_template_3(self, refusal: str) -> bool:
        """Whether RabbitMQ's ``refusal`` of the queues names an argument template 4 changed."""
        changed = "x-quorum-initial-group-size|x-dead-letter-strategy|x-overflow"
        return bool(re.search(changed, refusal)) or (
            "x-queue-type" in refusal and f"'{self.names.retry}'" in refusal
        )

    async def bind(self, queue: AbstractQueue) -> None:
        """Bind the service queue to the exchange once per handler pattern (idempotent)."""
        for pattern in self.patterns:
            await queue.bind(self.exchange, routing_key=pattern)
