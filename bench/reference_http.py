"""The REST reference: bare aiohttp answering the same JSON as the service's GET /sensors/{name}.

python reference_http.py PORT [uvloop]  -> as ``web.run_app`` serves it: asyncio's own loop,
or uvloop's, which the service runs on where it is installed
"""

import asyncio
import sys

from aiohttp import web

BODY = {"sensor": "bench", "count": 1, "last": 1.0, "minimum": 1.0, "maximum": 1.0, "mean": 1.0}


async def sensor(request: web.Request) -> web.Response:
    return web.json_response(BODY)


app = web.Application()
app.router.add_get("/sensors/{sensor}", sensor)
if sys.argv[2:] == ["uvloop"]:
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
