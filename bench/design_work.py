"""The work of the design comparison, the same in every design: the example service's own
models and statistics, its strict validation and its JSON. Only the concurrency model around
it differs. Imported by the design scripts, which run in the rendered service's environment::

    work = Work()
    work.record(body)  # a measurement.recorded event: validated, deduplicated, added
    status, body = work.answer("boiler")  # GET /sensors/boiler: 200 and SensorStats JSON, or 404

``SharedWork`` keeps the statistics in shared memory, under a lock, for the design whose HTTP
server and consumer are separate processes. ``ThreadPerConnection`` and ``consume`` are the
HTTP server and the AMQP consumer of the two designs that are not a single loop.
"""

from __future__ import annotations

import ctypes
import multiprocessing
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Lock
from uuid import UUID

import pika
from measurement_service.runtime.messaging import validate
from measurement_service.service.models import MeasurementRecorded, SensorPath, SensorStats
from measurement_service.service.state import REMEMBERED_IDS, Running, Sensors

NOT_FOUND = b'{"title":"Not Found","status":404}'


class Work:
    """The example's state, as the single loop and the threads share it."""

    def __init__(self) -> None:
        self.sensors = Sensors()

    def record(self, body: bytes) -> None:
        self.sensors.record(validate(MeasurementRecorded, body))

    def answer(self, name: str) -> tuple[int, bytes]:
        path = SensorPath.model_validate({"sensor": name})
        running = self.sensors.stats.get(path.sensor)
        if running is None:
            return 404, NOT_FOUND
        return 200, running.as_model().model_dump_json().encode()


SLOTS = 64  # sensors; the benchmark uses a few
NAME = 64  # bytes of a sensor's name
FIELDS = 5  # count, last, minimum, maximum, mean


class SharedWork:
    """The same, with the statistics in shared memory: made before the processes fork."""

    def __init__(self) -> None:
        self.lock = multiprocessing.Lock()
        self.names = multiprocessing.RawArray(ctypes.c_char, SLOTS * NAME)
        self.values = multiprocessing.RawArray(ctypes.c_double, SLOTS * FIELDS)
        self.seen: OrderedDict[UUID, None] = OrderedDict()  # the consumer's alone

    def _slot(self, name: bytes, add: bool) -> int | None:
        for slot in range(SLOTS):
            held = self.names[slot * NAME : (slot + 1) * NAME].rstrip(b"\0")
            if held == name:
                return slot
            if not held:
                if not add:
                    return None
                self.names[slot * NAME : slot * NAME + len(name)] = name
                return slot
        raise RuntimeError("no free slot")

    def record(self, body: bytes) -> None:
        event = validate(MeasurementRecorded, body)
        if event.id in self.seen:
            return
        self.seen[event.id] = None
        if len(self.seen) > REMEMBERED_IDS:
            self.seen.popitem(last=False)
        with self.lock:
            slot = self._slot(event.sensor.encode(), add=True)
            assert slot is not None
            at = slot * FIELDS
            if self.values[at] == 0:
                value = event.value
                running = Running(event.sensor, 1, value, value, value, value)
            else:
                running = Running(event.sensor, int(self.values[at]), *self.values[at + 1 : at + 5])
                running.add(event.value)
            self.values[at : at + FIELDS] = [
                running.count, running.last, running.minimum, running.maximum, running.mean,
            ]  # fmt: skip

    def answer(self, name: str) -> tuple[int, bytes]:
        path = SensorPath.model_validate({"sensor": name})
        with self.lock:
            slot = self._slot(path.sensor.encode(), add=False)
            if slot is None:
                return 404, NOT_FOUND
            count, last, minimum, maximum, mean = self.values[slot * FIELDS : (slot + 1) * FIELDS]
        stats = SensorStats(
            sensor=path.sensor, count=int(count), last=last, minimum=minimum, maximum=maximum,
            mean=mean,
        )  # fmt: skip
        return 200, stats.model_dump_json().encode()


class ThreadPerConnection(ThreadingHTTPServer):
    """The HTTP server of the threads and processes designs: a thread per connection, as a
    threaded WSGI server has, with aiohttp's TCP_NODELAY and a backlog for 1000 connections."""

    request_queue_size = 1024
    daemon_threads = True

    def __init__(self, port: int, work: Work | SharedWork) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_GET(self) -> None:
                prefix, _, name = self.path.partition("/sensors/")
                status, body = work.answer(name) if not prefix and name else (404, NOT_FOUND)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)


def consume(url: str, queue: str, work: Work | SharedWork, lock: Lock | None) -> None:
    """The blocking pika consumer of the threads and processes designs, at the service's
    default prefetch, acking after the work, as the service does."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_qos(prefetch_count=100)

    def on_message(ch, method, properties, body) -> None:  # type: ignore[no-untyped-def]
        if lock is None:
            work.record(body)
        else:
            with lock:
                work.record(body)
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message)
    channel.start_consuming()
