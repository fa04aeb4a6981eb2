"""The example's work as threads: an HTTP server with a thread per connection and a blocking
AMQP consumer thread share the statistics under a lock. Run by the benchmark, with pika:

python design_threads.py PORT AMQP_URL QUEUE
GET /sensors/{name} answers the sensor's statistics; each measurement on QUEUE is recorded.
"""

import sys
import threading

from design_work import ThreadPerConnection, Work, consume


class Locked(Work):
    """The work with the statistics under one lock: the threads share them."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def answer(self, name: str) -> tuple[int, bytes]:
        with self.lock:
            return super().answer(name)


def main() -> None:
    port, url, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    work = Locked()
    threading.Thread(target=consume, args=(url, queue, work, work.lock), daemon=True).start()
    ThreadPerConnection(port, work).serve_forever()


if __name__ == "__main__":
    main()
