"""The benchmark: figures for the single-loop design, each against a reference run beside it.

Renders the default service into a temporary folder, installs it, starts RabbitMQ the way the
tests do (or uses AMQP_URL), measures, prints one table and writes bench/results/latest.json.
Run it as ``bash bench/run``; ``--help`` lists the knobs.

Measured (service / reference, both in this run):
- time from process start to ready (``/health/ready`` 200 / first 200 of bare aiohttp);
- idle RSS and CPU over ``--idle`` seconds, RabbitMQ connected and default tasks running;
- REST req/s, p50 and p99 of GET /sensors/{name} under wrk / bare aiohttp with the same JSON;
- consume msg/s of ``--messages`` pre-filled measurement events, decoded, validated, handled
  and acked / a raw aio-pika consumer decoding and acking, at the same prefetch;
- publish msg/s, persistent with confirms, 100 awaited together / raw aio-pika doing the same;
- REST p99 while the service drains a flood of messages / the same service's p99 idle.

The service runs with ``--log-level WARNING`` (no access log), since the references log nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cookiecutter.main import cookiecutter  # noqa: E402

from tests.rabbitmq import ThrowawayRabbitMQ, free_port  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE / 1e6


def wait_for(url: str, status: int = 200, within: float = 60) -> float:
    """Seconds until ``url`` answers ``status``."""
    began = time.perf_counter()
    while time.perf_counter() - began < within:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == status:
                    return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{url} did not answer {status} within {within}s")


class Process:
    """A server process started now, timed from its start."""

    def __init__(self, command: list[str], cwd: Path, ready_url: str) -> None:
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.ready_url = ready_url

    def ready_after(self) -> float:
        wait_for(self.ready_url)
        return time.perf_counter() - self.started

    def stop(self) -> None:
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


def wrk(url: str, connections: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def latency_ms(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert rate, out
    return {"req_s": float(rate[1]), "p50_ms": latency_ms("50"), "p99_ms": latency_ms("99")}


async def fill_queue(url: str, exchange: str, routing_key: str, bodies: list[bytes]) -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=False)
        target = await channel.get_exchange(exchange) if exchange else channel.default_exchange
        for body in bodies:
            message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await target.publish(message, routing_key=routing_key)


async def queue_length(url: str, name: str) -> int:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


def measurement_bodies(count: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        json.dumps(
            {"id": str(uuid4()), "sensor": "consume", "value": 1.0, "recorded_at": now}
        ).encode()
        for _ in range(count)
    ]


def run(args: argparse.Namespace, amqp_url: str, work: Path) -> dict[str, Any]:
    print("rendering and installing the default service ...", flush=True)
    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(work)))
    uv = shutil.which("uv") or "uv"
    subprocess.run([uv, "sync", "--quiet", "--no-dev"], cwd=project, check=True)
    python = str(project / ".venv/bin/python")
    service_bin = str(project / ".venv/bin/measurement-service")
    results: dict[str, Any] = {"machine": machine(python)}

    # Start-up and idle: the service and the bare reference side by side, over one window.
    port, ref_port = free_port(), free_port()
    service_cmd = [service_bin, "--amqp-url", amqp_url, "--http-host", "127.0.0.1"]
    service_cmd += ["--http-port", str(port), "--log-level", "WARNING"]
    service = Process(service_cmd, project, f"http://127.0.0.1:{port}/health/ready")
    ready = service.ready_after()
    reference = Process(
        [python, str(ROOT / "bench/reference_http.py"), str(ref_port)],
        project,
        f"http://127.0.0.1:{ref_port}/sensors/x",
    )
    ref_ready = reference.ready_after()
    results["start_to_ready_s"] = {"service": ready, "reference": ref_ready}
    print(f"idle for {args.idle}s ...", flush=True)
    cpu0, ref_cpu0 = cpu_seconds(service.popen.pid), cpu_seconds(reference.popen.pid)
    t0 = time.time()
    time.sleep(args.idle)
    window = time.time() - t0
    results["idle_cpu_percent"] = {
        "service": 100 * (cpu_seconds(service.popen.pid) - cpu0) / window,
        "reference": 100 * (cpu_seconds(reference.popen.pid) - ref_cpu0) / window,
    }
    results["idle_rss_mb"] = {
        "service": rss_mb(service.popen.pid),
        "reference": rss_mb(reference.popen.pid),
    }

    # REST: the same JSON, the same load, one after the other.
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/measurements",
        data=b'{"sensor": "bench", "value": 1.0}',
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).close()
    wait_for(f"http://127.0.0.1:{port}/sensors/bench")
    load = (args.connections, args.duration)
    rest_runs: list[dict[str, float]] = []
    ref_runs: list[dict[str, float]] = []
    for round_ in range(args.repeat):
        print(
            f"REST {round_ + 1}/{args.repeat}: wrk, {args.connections} connections, "
            f"{args.duration}s each ...",
            flush=True,
        )
        ref_runs.append(wrk(f"http://127.0.0.1:{ref_port}/sensors/bench", *load))
        rest_runs.append(wrk(f"http://127.0.0.1:{port}/sensors/bench", *load))
    rest, ref_rest = _median_run(rest_runs), _median_run(ref_runs)
    results["rest"] = {"service": rest, "reference": ref_rest}
    reference.stop()
    service.stop()

    # Consume: pre-fill the service's queue while it is stopped, then time it draining; then a
    # raw aio-pika consumer on a queue of its own. Alternated --repeat times; medians reported.
    bodies = measurement_bodies(args.messages)
    service_rates: list[float] = []
    raw_rates: list[float] = []
    for round_ in range(args.repeat):
        print(f"consume {round_ + 1}/{args.repeat}: {args.messages} messages each ...", flush=True)
        service_rates.append(consume_service(amqp_url, service_cmd, project, port, bodies))
        raw_rates.append(consume_raw(amqp_url, python, bodies))
    results["consume_msg_s"] = {
        "service": statistics.median(service_rates),
        "reference": statistics.median(raw_rates),
        "service_runs": service_rates,
        "reference_runs": raw_rates,
    }

    # Mixed load: REST while the service drains a flood, against the same REST idle (above).
    print("REST while consuming a flood ...", flush=True)
    asyncio.run(fill_queue(amqp_url, "events", "measurement.recorded", bodies))
    service = Process(service_cmd, project, f"http://127.0.0.1:{port}/health/live")
    service.ready_after()
    busy = wrk(f"http://127.0.0.1:{port}/sensors/bench", args.connections, args.duration // 2)
    still_queued = asyncio.run(queue_length(amqp_url, "measurement-service"))
    service.stop()
    results["rest_while_consuming"] = {"service": busy, "reference": rest}
    results["rest_while_consuming"]["messages_left_at_end"] = still_queued

    # Publish: the service's publisher and raw aio-pika, confirms, 100 awaited together.
    print(f"publish: {args.messages // 4} messages each ...", flush=True)
    out = subprocess.run(
        [python, str(ROOT / "bench/publish.py"), amqp_url, str(args.messages // 4), "100"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    results["publish_msg_s"] = {"service": float(out[0]), "reference": float(out[1])}
    return results


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median req/s (its latencies come with it)."""
    return sorted(runs, key=lambda run: run["req_s"])[len(runs) // 2]


def consume_service(
    amqp_url: str, service_cmd: list[str], project: Path, port: int, bodies: list[bytes]
) -> float:
    """Messages a second for the service to drain ``bodies`` pre-filled into its queue."""
    asyncio.run(fill_queue(amqp_url, "events", "measurement.recorded", bodies))
    service = Process(service_cmd, project, f"http://127.0.0.1:{port}/health/live")
    service.ready_after()
    first = last = 0.0
    first_count = 0
    goal = len(bodies)  # a fresh process: its count of the sensor starts at zero
    deadline = time.perf_counter() + 600
    while True:
        count = _count(port)
        now = time.perf_counter()
        if count and not first:
            first, first_count = now, count
        if count >= goal:
            last = now
            break
        if now > deadline:
            service.stop()
            raise TimeoutError(f"the service handled {count} of {goal} messages in 600 s")
        time.sleep(0.01)
    service.stop()
    return (goal - first_count) / (last - first)


def _count(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/sensors/consume") as response:
            return int(json.loads(response.read())["count"])
    except OSError:
        return 0


def consume_raw(amqp_url: str, python: str, bodies: list[bytes]) -> float:
    """Messages a second for raw aio-pika to drain ``bodies`` from a queue of its own."""
    queue = f"bench-raw-{uuid4().hex[:6]}"
    asyncio.run(_declare(amqp_url, queue))
    asyncio.run(fill_queue(amqp_url, "", queue, bodies))
    out = subprocess.run(
        [
            python,
            str(ROOT / "bench/reference_consumer.py"),
            amqp_url,
            queue,
            str(len(bodies)),
            "100",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    asyncio.run(_delete(amqp_url, queue))
    return int(out[1]) / float(out[0])


async def _delete(url: str, name: str) -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def _declare(url: str, name: str) -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})


def table(results: dict[str, Any]) -> str:
    rows = [
        ("start to ready (s)", results["start_to_ready_s"], "lower"),
        ("idle CPU (% of a core)", results["idle_cpu_percent"], "lower"),
        ("idle RSS (MB)", results["idle_rss_mb"], "lower"),
        ("REST req/s", _pick(results["rest"], "req_s"), "higher"),
        ("REST p50 (ms)", _pick(results["rest"], "p50_ms"), "lower"),
        ("REST p99 (ms)", _pick(results["rest"], "p99_ms"), "lower"),
        ("consume msg/s", results["consume_msg_s"], "higher"),
        ("publish msg/s, confirmed", results["publish_msg_s"], "higher"),
        (
            "REST p99 (ms) consuming / idle",
            {k: results["rest_while_consuming"][k]["p99_ms"] for k in ("service", "reference")},
            "lower",
        ),
    ]
    lines = [
        "| figure | service | reference | service / reference |",
        "|---|---:|---:|---:|",
    ]
    for name, pair, _ in rows:
        ratio = f"{pair['service'] / pair['reference']:.2f}" if pair["reference"] else "n/a"
        lines.append(f"| {name} | {pair['service']:.3g} | {pair['reference']:.3g} | {ratio} |")
    return "\n".join(lines)


def _pick(pairs: dict[str, dict[str, float]], key: str) -> dict[str, float]:
    return {side: values[key] for side, values in pairs.items()}


def machine(python: str) -> dict[str, Any]:
    """The machine, and the versions installed in the service's own environment."""
    versions = subprocess.run(
        [python, "-c", "import aiohttp as h, aio_pika as p; print(h.__version__, p.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "aiohttp": versions[0],
        "aio-pika": versions[1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--idle", type=float, default=30.0, help="idle window in seconds")
    parser.add_argument("--duration", type=int, default=10, help="seconds of wrk per target")
    parser.add_argument("--connections", type=int, default=64, help="wrk keep-alive connections")
    parser.add_argument("--messages", type=int, default=20000, help="messages to consume")
    parser.add_argument(
        "--repeat", type=int, default=3, help="REST and consume rounds, alternated; medians kept"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "bench/results/latest.json")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("error: wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-") as folder:
        given = os.environ.get("AMQP_URL")
        node = None if given else ThrowawayRabbitMQ()
        if node is not None:
            print("starting a throwaway RabbitMQ ...", flush=True)
            node.start()
        try:
            results = run(args, given or (node.url if node else ""), Path(folder))
        finally:
            if node is not None:
                node.stop()
    info = results.pop("machine")
    report = {"machine": info, "results": results}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print()
    print(
        f"{info['cores']} cores, Python {info['python']}, aiohttp {info['aiohttp']}, "
        f"aio-pika {info['aio-pika']}; reference = bare aiohttp / raw aio-pika, same run"
    )
    print(table(results))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
