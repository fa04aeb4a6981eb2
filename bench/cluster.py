"""Consuming on a 3-node RabbitMQ cluster: the generated service with 1, 2 and 3 replicas
competing for its quorum queue, against raw aio-pika consuming a quorum queue of the same
cluster in the same run. The cluster is the tests' (``tests/rabbitmq.py``), on loopback, so
all of it shares this machine's cores. One run, about three minutes::

    bash bench/run cluster    # prints a table; writes bench/results/cluster.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import urllib.request
from pathlib import Path

from harness import Process, drain_rate
from queues import fill_queue, measurement_bodies, purge

from bench import ROOT, consume_reference, install_service, machine
from tests.rabbitmq import ThrowawayCluster, free_port

SERVICE_QUEUE = "measurement-service"  # the default SERVICE_NAME


def consume(
    cluster: ThrowawayCluster, service_bin: str, project: Path, replicas: int, bodies: list[bytes]
) -> tuple[float, list[str]]:
    """Messages a second for ``replicas`` service processes to drain ``bodies``, and the node
    each was connected to."""
    asyncio.run(fill_queue(cluster.nodes[0].url, "events", "measurement.recorded", bodies))
    ports = [free_port() for _ in range(replicas)]
    started = [
        Process(
            [*service(service_bin, cluster), "--http-port", str(port)],
            project,
            f"http://127.0.0.1:{port}/health/ready",  # its node named only once it is ready
        )
        for port in ports
    ]
    for process in started:
        process.ready_after()
    nodes = [node_in_use(port) for port in ports]
    rate = drain_rate([f"http://127.0.0.1:{port}/sensors/consume" for port in ports], len(bodies))
    for process in started:
        process.stop()
    return rate, nodes


def service(service_bin: str, cluster: ThrowawayCluster) -> list[str]:
    """The command of a replica, but for its port."""
    options = ["--amqp-url", cluster.url, "--http-host", "127.0.0.1", "--log-level", "WARNING"]
    return [service_bin, *options]


def node_in_use(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready") as response:
        detail = str(json.loads(response.read())["broker"]["detail"])
    return detail.rsplit("@", 1)[-1].rstrip("/")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20000, help="messages per drain")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, alternated; medians kept")
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/cluster.json")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-") as folder, ThrowawayCluster() as cluster:
        print(f"a 3-node cluster at {cluster.url}", flush=True)
        project = install_service(Path(folder))
        python = str(project / ".venv/bin/python")
        service_bin = str(project / ".venv/bin/measurement-service")
        bodies = measurement_bodies(args.messages)
        try:
            # One start declares the queue; then every drain starts from a full one.
            port = free_port()
            declaring = Process(
                [*service(service_bin, cluster), "--http-port", str(port)],
                project,
                f"http://127.0.0.1:{port}/health/ready",
            )
            declaring.ready_after()
            print(f"declared the queue from {node_in_use(port)}", flush=True)
            declaring.stop()
            rates: dict[str, list[float]] = {"reference": [], "1": [], "2": [], "3": []}
            for round_ in range(args.repeat):
                for replicas in (1, 2, 3):
                    asyncio.run(purge(cluster.nodes[0].url, SERVICE_QUEUE))
                    rate, nodes = consume(cluster, service_bin, project, replicas, bodies)
                    rates[str(replicas)].append(rate)
                    on = ", ".join(nodes)
                    print(f"round {round_ + 1}: {replicas} on {on}: {rate:,.0f} msg/s", flush=True)
                rate = consume_reference(
                    cluster.nodes[0].url, python, "reference_consumer.py", bodies
                )
                rates["reference"].append(rate)
                print(
                    f"round {round_ + 1}: raw aio-pika, one consumer: {rate:,.0f} msg/s", flush=True
                )
        finally:
            Process.stop_all()
        info = machine(python)
    medians = {key: statistics.median(values) for key, values in rates.items()}
    report = {"machine": info, "messages": args.messages, "msg_s": medians, "rounds": rates}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{info['cores']} cores; medians of {args.repeat} rounds of {args.messages:,} messages")
    print("| consumers on the 3-node cluster | msg/s | / raw aio-pika | / one replica |")
    print("|---|---:|---:|---:|")
    reference, one = medians["reference"], medians["1"]
    print(f"| raw aio-pika, one consumer | {reference:,.0f} | 1.00 | |")
    for replicas in ("1", "2", "3"):
        rate = medians[replicas]
        ratios = f"{rate / reference:.2f} | {rate / one:.2f}"
        print(f"| the service, {replicas} replica(s) | {rate:,.0f} | {ratios} |")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
