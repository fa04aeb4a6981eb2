"""What the service declares on RabbitMQ meets what an older version of it declared."""

from __future__ import annotations

import aio_pika
import pytest

from {{ cookiecutter.package }}.runtime.amqp import AmqpBroker
from {{ cookiecutter.package }}.runtime.broker import BROKER, StartupError
from {{ cookiecutter.package }}.settings import ENV_PREFIX

from .conftest import AMQP_URL, delete_topology, make_settings
from .sample import sample_app


@pytest.mark.rabbitmq
async def test_a_queue_declared_before_the_group_size_is_refused_with_the_way_out() -> None:
    if not AMQP_URL:
        pytest.skip("set AMQP_URL to a RabbitMQ to run this")
    settings = make_settings(amqp_url=AMQP_URL)
    async with await aio_pika.connect(AMQP_URL) as connection:
        channel = await connection.channel()  # as template 3 declared it: no group size
        await channel.declare_queue(
            f"{settings.service_name}.dead-letter",
            durable=True,
            arguments={"x-queue-type": "quorum"},
        )
    broker = sample_app(settings)[BROKER]
    assert isinstance(broker, AmqpBroker)
    try:
        with pytest.raises(StartupError) as caught:
            await broker.connect()
        message = str(caught.value)
        assert "inequivalent arg 'x-quorum-initial-group-size'" in message
        assert f"{ENV_PREFIX}QUORUM_GROUP_SIZE=0 keeps a queue declared before" in message

        kept = sample_app(settings.model_copy(update={"quorum_group_size": 0}))[BROKER]
        assert isinstance(kept, AmqpBroker)
        await kept.connect()  # the old queue as it is
        await kept.close()
    finally:
        await delete_topology(broker)
