"""Where a GET and a delivery spend their time inside the service: cProfile over the same
paths ``overhead.py`` times (the route's wrapped handler on a ready request; the dispatcher,
the example's handler and the ack), metrics on. Run with the service's interpreter, from a
rendered project (``bench/PROFILE.md`` says how, and what it showed):

python hotpaths.py [N]  -> the functions that take the most time of N GETs and N deliveries

Inside one process the caches are warm and there is no network, so the absolute times are
lower than in a server; the ranking is what this is for. Under a real load, sample the
server instead: ``py-spy record --nonblocking -f raw -p PID`` while wrk runs.
"""

import asyncio
import cProfile
import pstats
import sys

from measurement_service.app import create_app
from measurement_service.runtime.broker import DISPATCHER
from measurement_service.settings import Settings
from overhead import Delivery, event_bodies, get_chain

TOP = 15


def report(profile: cProfile.Profile, title: str, count: int) -> None:
    stats = pstats.Stats(profile)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n## {title}: {total / count * 1e6:.1f} us each under cProfile\n")
    stats.sort_stats("tottime").print_stats(TOP)


async def main(count: int) -> None:
    chain, request = await get_chain(metrics=True)
    for _ in range(1000):  # warm: pydantic and the caches of the first calls
        await chain(request)
    profile = cProfile.Profile()
    profile.enable()
    for _ in range(count):
        await chain(request)
    profile.disable()
    report(profile, "GET /sensors/{sensor}", count)

    handle = create_app(Settings(amqp_url="memory://", log_level="ERROR"))[DISPATCHER].handle
    bodies = event_bodies(count)
    profile = cProfile.Profile()
    profile.enable()
    for body in bodies:
        await handle(Delivery(body))
    profile.disable()
    report(profile, "delivery of measurement.recorded", count)


asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
