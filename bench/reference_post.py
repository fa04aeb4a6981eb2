"""The POST reference: bare aiohttp and raw aio-pika doing what the service's POST /measurements
does. It validates the body strictly as the example's model, publishes the event persistent
and mandatory with a confirm, and answers 202 with the event's id. On uvloop, as the service
runs:

python reference_post.py PORT AMQP_URL EXCHANGE
"""

import asyncio
import sys
from datetime import UTC, datetime
from uuid import uuid4

import aio_pika
import uvloop
from aiohttp import web
from measurement_service.runtime.messaging import validate
from measurement_service.service.models import Accepted, MeasurementIn, MeasurementRecorded
from pydantic import ValidationError


async def main(port: int, url: str, exchange_name: str) -> None:
    connection = await aio_pika.connect(url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(exchange_name)

    async def record(request: web.Request) -> web.Response:
        try:
            body = validate(MeasurementIn, await request.read())
        except ValidationError:
            return web.json_response({"title": "Unprocessable Content"}, status=422)
        event = MeasurementRecorded(
            id=uuid4(), sensor=body.sensor, value=body.value, recorded_at=datetime.now(UTC)
        )
        message = aio_pika.Message(
            event.model_dump_json().encode(),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=uuid4().hex,
            timestamp=datetime.now(UTC),
        )
        await exchange.publish(message, "measurement.recorded", mandatory=True, timeout=5)
        answer = Accepted(id=event.id).model_dump_json().encode()
        return web.Response(body=answer, status=202, content_type="application/json")

    app = web.Application()
    app.router.add_post("/measurements", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


uvloop.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
