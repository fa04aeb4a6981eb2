"""The same small service as threads: a threaded HTTP server and a blocking AMQP consumer
thread share a counter under a lock. Run by the benchmark, with pika installed:

python design_threads.py PORT AMQP_URL QUEUE
GET /count answers {"count": n}; each message on QUEUE (JSON) adds one, then is acked.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pika


class Server(ThreadingHTTPServer):
    request_queue_size = 128  # socketserver's default of 5 drops connections; aiohttp uses 128


lock = threading.Lock()
count = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    disable_nagle_algorithm = True  # headers and body go out in two writes; don't wait 40 ms

    def do_GET(self) -> None:
        with lock:
            body = json.dumps({"count": count}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def consume(url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
    channel.basic_qos(prefetch_count=100)

    def on_message(ch, method, properties, body) -> None:  # type: ignore[no-untyped-def]
        global count
        json.loads(body)
        with lock:
            count += 1
        ch.basic_ack(method.delivery_tag)

    channel.basic_consume(queue, on_message)
    channel.start_consuming()


def main() -> None:
    port, url, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    threading.Thread(target=consume, args=(url, queue), daemon=True).start()
    Server(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
