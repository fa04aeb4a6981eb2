"""The AsyncAPI 3.0 document of the service's events, built from the same declarations the
runtime consumes and publishes by (``EventHandlers``), so it cannot drift from what the service
does. ``setup`` serves it at ``GET /asyncapi.json``. Example use::

    exchange = Exchange("events", "/", QueueNames.of("my-service"))
    document = asyncapi_document(events, exchange, "my-service", "1.0.0", "")
    document["operations"]["on_measurement_recorded"]["action"]  # "receive"

Each routing key the service publishes and each pattern it subscribes to is a channel on the
shared topic exchange; a send operation is a publication, a receive operation a handler. The
service's queue and dead-letter queue are channels too: receive operations name the queue
they consume from in ``x-queue``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from . import TEMPLATE_VERSION
from .amqp.topology import QueueNames
from .http import serve_document
from .messaging import EventHandlers, summary_of
from .settings import SETTINGS, RuntimeSettings

AMQP_BINDING = "0.3.0"
PERSISTENT = 2
Use = tuple[type[BaseModel], JsonSchemaMode]  # a model, as sent or as received


@dataclass(frozen=True)
class Exchange:
    """Where the service's events go: the exchange and its vhost, and the service's queues."""

    name: str
    vhost: str
    queues: QueueNames

    @classmethod
    def of(cls, settings: RuntimeSettings) -> Exchange:
        path = urlsplit(settings.amqp_nodes[0]).path
        vhost = unquote(path[1:]) or "/"
        return cls(settings.exchange, vhost, QueueNames.of(settings.service_name))


def asyncapi_document(
    events: EventHandlers, exchange: Exchange, title: str, version: str, description: str
) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of what ``events`` receives and sends on ``exchange``."""
    sent: list[Use] = [(p.model, "serialization") for p in events.publications]
    received: list[Use] = [(s.model, "validation") for s in events.subscriptions]
    refs, schemas = models_json_schema(
        list(dict.fromkeys(sent + received)), ref_template="#/components/schemas/{model}"
    )

    def message_name(use: Use) -> str:
        return str(refs[use]["$ref"]).rsplit("/", 1)[1]

    messages = {
        message_name(use): _message(use[0], refs[use]) for use in dict.fromkeys(sent + received)
    }
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}

    def channel(address: str, use: Use) -> dict[str, Any]:
        """The channel of ``address``, with ``use``'s message in it; a $ref to that message."""
        key = _channel_id(address)
        entry = channels.setdefault(
            key, {"address": address, "messages": {}, "bindings": _on_exchange(exchange)}
        )
        name = message_name(use)
        entry["messages"][name] = {"$ref": f"#/components/messages/{name}"}
        return {"$ref": f"#/channels/{key}/messages/{name}"}

    for publication, use in zip(events.publications, sent, strict=True):
        message = channel(publication.routing_key, use)
        name = _unique(operations, f"publish_{_channel_id(publication.routing_key)}")
        operations[name] = _operation("send", publication.routing_key, message, publication.summary)
    for subscription, use in zip(events.subscriptions, received, strict=True):
        message = channel(subscription.pattern, use)
        summary = summary_of(subscription.handler)
        operations[_unique(operations, subscription.handler.__name__)] = {
            **_operation("receive", subscription.pattern, message, summary),
            "x-queue": exchange.queues.service,
        }
    if events.subscriptions:
        channels.update(_queues(exchange, [message_name(use) for use in received]))
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": title,
            "version": version,
            "description": description,
            "x-template-version": TEMPLATE_VERSION,
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas.get("$defs", {})},
    }


def setup(
    app: web.Application, events: EventHandlers, title: str, version: str, description: str
) -> None:
    """Serve ``GET /asyncapi.json``, built once from ``events``."""
    document = asyncapi_document(events, Exchange.of(app[SETTINGS]), title, version, description)
    serve_document(app, "/asyncapi.json", document)


def _message(model: type[BaseModel], ref: Any) -> dict[str, Any]:
    summary = summary_of(model)
    return {
        "name": model.__name__,
        "title": model.__name__,
        **({"summary": summary} if summary else {}),
        "description": "JSON. The AMQP correlation_id property carries the correlation id of "
        "the work that published it; the headers carry what the publisher added.",
        "contentType": "application/json",
        "payload": ref,
    }


def _operation(
    action: Literal["send", "receive"], address: str, message: dict[str, str], summary: str
) -> dict[str, Any]:
    key = _channel_id(address)
    amqp: dict[str, Any] = (
        {"deliveryMode": PERSISTENT, "mandatory": True} if action == "send" else {"ack": True}
    )
    return {
        "action": action,
        "channel": {"$ref": f"#/channels/{key}"},
        "messages": [message],
        **({"summary": summary} if summary else {}),
        "bindings": {"amqp": {**amqp, "bindingVersion": AMQP_BINDING}},
    }


def _on_exchange(exchange: Exchange) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": {
                "name": exchange.name,
                "type": "topic",
                "durable": True,
                "autoDelete": False,
                "vhost": exchange.vhost,
            },
            "bindingVersion": AMQP_BINDING,
        }
    }


def _queues(exchange: Exchange, received: list[str]) -> dict[str, Any]:
    """The service queue (bound once per subscription) and the dead-letter queue."""

    def queue(name: str, description: str, messages: list[str]) -> dict[str, Any]:
        return {
            "address": name,
            "description": description,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
            "bindings": {
                "amqp": {
                    "is": "queue",
                    "queue": {
                        "name": name,
                        "durable": True,
                        "exclusive": False,
                        "autoDelete": False,
                        "vhost": exchange.vhost,
                    },
                    "bindingVersion": AMQP_BINDING,
                }
            },
        }

    names = list(dict.fromkeys(received))
    service, dead = exchange.queues.service, exchange.queues.dead_letter
    return {
        _channel_id(service): queue(
            service,
            "The service's queue, bound to the exchange once per receive operation's address.",
            names,
        ),
        _channel_id(dead): queue(
            dead,
            "Messages no retry can fix (invalid, or failed on every attempt), with headers that "
            "say why.",
            names,
        ),
    }


def _unique(taken: dict[str, Any], name: str) -> str:
    """``name``, or ``name_2``, ``name_3`` ... if handlers of two modules share a name."""
    candidate, number = name, 1
    while candidate in taken:
        number += 1
        candidate = f"{name}_{number}"
    return candidate


def _channel_id(address: str) -> str:
    """A component key for ``address``: topic wildcards spelled out, other odd characters _."""
    spelled = address.replace("*", "STAR").replace("#", "HASH")
    return re.sub(r"[^A-Za-z0-9._-]", "_", spelled)
