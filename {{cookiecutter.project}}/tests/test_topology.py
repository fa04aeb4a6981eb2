"""What the service declares on RabbitMQ meets what an older version of it declared."""

from __future__ import annotations

from typing import Any

import aio_pika
import pytest

from {{ cookiecutter.package }}.runtime.amqp import AmqpBroker
from {{ cookiecutter.package }}.runtime.broker import BROKER, StartupError
from {{ cookiecutter.package }}.settings import ENV_PREFIX

from .conftest import AMQP_URL, delete_topology, make_settings
from .sample import sample_app


@pytest.mark.rabbitmq
async def test_queues_template_3_declared_are_refused_with_the_way_out() -> None:
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    settings = make_settings(amqp_url=AMQP_URL)
    as_template_3 = settings.model_copy(update={"quorum_group_size": 0})
    old = sample_app(as_template_3)[BROKER]
    assert isinstance(old, AmqpBroker)
    await old.connect()  # classic retry queue, no group size, dead-lettering at most once
    await old.close()
    try:
        broker = sample_app(settings)[BROKER]
        assert isinstance(broker, AmqpBroker)
        with pytest.raises(StartupError) as caught:
            await broker.connect()
        message = str(caught.value)
        assert "inequivalent arg" in message
        assert f"{ENV_PREFIX}QUORUM_GROUP_SIZE=0 keeps the queues template 3 declared" in message

        kept = sample_app(as_template_3)[BROKER]
        assert isinstance(kept, AmqpBroker)
        await kept.connect()  # the old queues as they are
        await kept.close()
    finally:
        await delete_topology(old)


@pytest.mark.rabbitmq
async def test_a_retry_queue_of_the_wrong_type_is_refused_with_the_way_out() -> None:
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    settings = make_settings(amqp_url=AMQP_URL)
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()  # only the retry queue is as template 3 left it
        arguments: dict[str, Any] = {
            "x-queue-type": "classic",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": settings.service_name,
        }
        await channel.declare_queue(
            f"{settings.service_name}.retry", durable=True, arguments=arguments
        )
    broker = sample_app(settings)[BROKER]
    assert isinstance(broker, AmqpBroker)
    try:
        with pytest.raises(StartupError) as caught:
            await broker.connect()
        assert f"{ENV_PREFIX}QUORUM_GROUP_SIZE=0" in str(caught.value)
    finally:
        await delete_topology(broker)
