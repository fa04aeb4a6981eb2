"""The example's work on one event loop, without the template's runtime: an aiohttp route and
an aio-pika consumer share the statistics with no lock, on uvloop as the service runs. Run by
the benchmark:

python design_loop.py PORT AMQP_URL QUEUE
GET /sensors/{name} answers the sensor's statistics; each measurement on QUEUE is recorded.
"""

import asyncio
import sys

import aio_pika
import uvloop
from aiohttp import web
from design_work import Work


async def main(port: int, url: str, queue_name: str) -> None:
    work = Work()

    async def sensor(request: web.Request) -> web.Response:
        status, body = work.answer(request.match_info["sensor"])
        return web.Response(body=body, status=status, content_type="application/json")

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        work.record(message.body)
        await message.ack()

    connection = await aio_pika.connect(url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=100)
    queue = await channel.declare_queue(
        queue_name, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await queue.consume(on_message)
    app = web.Application()
    app.router.add_get("/sensors/{sensor}", sensor)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    await asyncio.Event().wait()


uvloop.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
