"""The same small service as processes: an HTTP process and an AMQP consumer process share a
counter through shared memory (multiprocessing.Value). Run by the benchmark, with pika:

python design_processes.py PORT AMQP_URL QUEUE
GET /count answers {"count": n}; each message on QUEUE (JSON) adds one, then is acked.
"""

import json
import multiprocessing
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from multiprocessing.sharedctypes import Synchronized

import pika


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's default of 5 drops connections; aiohttp uses 128


def serve(port: int, count: Synchronized) -> None:  # type: ignore[type-arg]
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
        disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms

        def do_GET(self) -> None:
            with count.get_lock():
                body = json.dumps({"count": count.value}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    Server(("127.0.0.1", port), Handler).serve_forever()


def consume(url: str, queue: str, count: Synchronized) -> None:  # type: ignore[type-arg]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_qos(prefetch_count=100)

    def on_message(ch, method, properties, body) -> None:  # type: ignore[no-untyped-def]
        json.loads(body)
        with count.get_lock():
            count.value += 1
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message)
    channel.start_consuming()


def main() -> None:
    port, url, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    count = multiprocessing.Value("q", 0)
    consumer = multiprocessing.Process(target=consume, args=(url, queue, count), daemon=True)
    consumer.start()
    serve(port, count)


if __name__ == "__main__":
    main()
