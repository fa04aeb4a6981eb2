"""The example's work as processes: an HTTP process with a thread per connection and an AMQP
consumer process share the statistics in shared memory, under a lock. Run by the benchmark,
with pika:

python design_processes.py PORT AMQP_URL QUEUE
GET /sensors/{name} answers the sensor's statistics; each measurement on QUEUE is recorded.
"""

import multiprocessing
import sys

from design_work import SharedWork, ThreadPerConnection, consume


def main() -> None:
    port, url, queue = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    work = SharedWork()  # before the fork: both processes map the same memory
    consumer = multiprocessing.Process(target=consume, args=(url, queue, work, None), daemon=True)
    consumer.start()
    ThreadPerConnection(port, work).serve_forever()


if __name__ == "__main__":
    main()
