"""The benchmark: figures for the single-loop design, each against a reference run beside it.

Renders the default service into a temporary folder, installs it, starts RabbitMQ the way the
tests do (or uses AMQP_URL), measures, prints one table and writes bench/results/latest.json.
Run it as ``bash bench/run``; ``--help`` lists the knobs. This file orders the measurements;
``harness.py`` starts and loads the processes, ``queues.py`` works RabbitMQ directly and
``report.py`` writes the tables and the chart.

Measured (service / reference, both in this run):
- time from process start to ready (``/health/ready`` 200 / first 200 of bare aiohttp);
- idle RSS and CPU over ``--idle`` seconds, RabbitMQ connected and default tasks running;
- REST req/s, p50 and p99 of GET /sensors/{name} under wrk / bare aiohttp with the same JSON;
- consume msg/s of ``--messages`` pre-filled measurement events, decoded, validated, handled
  and acked / a raw aio-pika consumer decoding and acking, at the same prefetch; and FastStream's
  RabbitBroker on the same kind of queue, as a peer;
- publish msg/s, persistent with confirms, 100 awaited together / raw aio-pika doing the same;
- REST p99 while the service drains a flood of messages / the same service's p99 idle;
- the same counter service (GET route + AMQP consumer) as the generated single loop, as threads
  (threaded HTTP server, blocking pika consumer thread, a lock) and as processes (HTTP process,
  pika consumer process, shared memory): req/s at 1 and 64 connections, msg/s, total RSS,
  threads and processes.

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
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cookiecutter.main import cookiecutter  # noqa: E402
from harness import (  # noqa: E402
    DESIGN_CONNECTIONS,
    REST_CONNECTIONS,
    Process,
    cpu_seconds,
    cpu_split,
    drain_rate,
    median_run,
    pin,
    rss_mb,
    wait_for,
    wrk,
)
from queues import (  # noqa: E402
    declare_queue,
    delete_queue,
    delete_service,
    fill_queue,
    measurement_bodies,
    purge,
    queue_length,
    reroute,
)
from report import chart, designs_table, scaling_table, table  # noqa: E402

from tests.rabbitmq import ThrowawayRabbitMQ, free_port  # noqa: E402

PEERS = ("pika", "faststream[rabbit]")


FLOOR = "import aiohttp.web, aio_pika, pydantic, pydantic_settings"


def import_floor(python: str, cwd: Path, times: int = 5) -> dict[str, float]:
    """The least a service on these libraries can cost: seconds from process start to having
    imported them (the median of ``times`` fresh processes, bytecode compiled), and the RSS of
    a process that has."""
    seconds = []
    for _ in range(times):
        began = time.perf_counter()
        subprocess.run([python, "-c", FLOOR], cwd=cwd, check=True)
        seconds.append(time.perf_counter() - began)
    probe = subprocess.Popen(
        [python, "-c", f"{FLOOR}; print(flush=True); input()"],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert probe.stdout is not None and probe.stdin is not None
    probe.stdout.readline()  # imported
    rss = rss_mb(probe.pid)
    probe.communicate(b"\n")
    return {"import_s": statistics.median(seconds), "rss_mb": rss}


def install_service(work: Path) -> Path:
    """Render the default service into ``work`` and install it as deployed; its folder."""
    print("rendering and installing the default service ...", flush=True)
    project = Path(cookiecutter(str(ROOT), no_input=True, output_dir=str(work)))
    uv = shutil.which("uv") or "uv"
    # As the Dockerfile installs it: no dev tools, not editable, bytecode compiled. Without
    # compiled bytecode every start would compile every module (this machine sets
    # PYTHONDONTWRITEBYTECODE=1), which is not what a deployed service does.
    subprocess.run(
        [uv, "sync", "--quiet", "--no-dev", "--no-editable", "--compile-bytecode"],
        cwd=project,
        check=True,
    )
    return project


def run(args: argparse.Namespace, amqp_url: str, work: Path) -> dict[str, Any]:
    project = install_service(work)
    uv = shutil.which("uv") or "uv"
    python = str(project / ".venv/bin/python")
    service_bin = str(project / ".venv/bin/measurement-service")
    results: dict[str, Any] = {"machine": machine(python)}
    service_queue = "measurement-service"

    # Start-up and idle: the service and the bare reference side by side, over one window.
    port, ref_port = free_port(), free_port()
    base_cmd = [service_bin, "--amqp-url", amqp_url, "--http-host", "127.0.0.1"]
    base_cmd += ["--log-level", "WARNING"]
    service_cmd = [*base_cmd, "--http-port", str(port)]
    service = Process(service_cmd, project, f"http://127.0.0.1:{port}/health/ready")
    ready = service.ready_after()
    asyncio.run(purge(amqp_url, service_queue))  # an earlier run's leftovers are not idle work
    reference = Process(
        [python, str(ROOT / "bench/reference_http.py"), str(ref_port)],
        project,
        f"http://127.0.0.1:{ref_port}/sensors/x",
    )
    ref_ready = reference.ready_after()
    results["start_to_ready_s"] = {"service": ready, "reference": ref_ready}
    floor = import_floor(python, project)
    results["import_floor"] = floor
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

    # REST: the same JSON, the same load, one after the other, each server on a core of its own.
    warm(port)
    servers, clients = cpu_split()
    for process in (reference, service):
        pin(process, servers)
    load = (args.connections, args.duration)
    rest_runs: list[dict[str, float]] = []
    ref_runs: list[dict[str, float]] = []
    for round_ in range(args.repeat):
        print(
            f"REST {round_ + 1}/{args.repeat}: wrk, {args.connections} connections, "
            f"{args.duration}s each ...",
            flush=True,
        )
        ref_runs.append(wrk(f"http://127.0.0.1:{ref_port}/sensors/bench", *load, cpus=clients))
        before = cpu_seconds(service.popen.pid)
        rest_runs.append(wrk(f"http://127.0.0.1:{port}/sensors/bench", *load, cpus=clients))
        rest_runs[-1]["cpu_us"] = (
            (cpu_seconds(service.popen.pid) - before) / rest_runs[-1]["requests"] * 1e6
        )
    rest, ref_rest = median_run(rest_runs), median_run(ref_runs)
    results["rest"] = {"service": rest, "reference": ref_rest}
    # One connection: each request waits for the one before, so this is latency, not capacity.
    # And bare aiohttp on uvloop, the loop the service runs on: like against like.
    uv_port = free_port()
    uv_reference = Process(
        [python, str(ROOT / "bench/reference_http.py"), str(uv_port), "uvloop"],
        project,
        f"http://127.0.0.1:{uv_port}/sensors/x",
    )
    uv_reference.ready_after()
    pin(uv_reference, servers)
    one: dict[str, list[dict[str, float]]] = {"service": [], "reference": []}
    uv_runs: list[dict[str, float]] = []
    for round_ in range(args.repeat):
        print(
            f"REST {round_ + 1}/{args.repeat}: 1 connection, and bare aiohttp on uvloop ...",
            flush=True,
        )
        one["reference"].append(
            wrk(f"http://127.0.0.1:{ref_port}/sensors/bench", 1, args.duration, cpus=clients)
        )
        one["service"].append(
            wrk(f"http://127.0.0.1:{port}/sensors/bench", 1, args.duration, cpus=clients)
        )
        uv_runs.append(wrk(f"http://127.0.0.1:{uv_port}/sensors/bench", *load, cpus=clients))
    results["rest_one_connection"] = {side: median_run(runs) for side, runs in one.items()}
    print("REST at 1, 8, 64 and 256 connections ...", flush=True)
    results["rest_scaling"] = {
        side: {
            str(c): wrk(f"http://127.0.0.1:{at}/sensors/bench", c, args.duration, cpus=clients)
            for c in REST_CONNECTIONS
        }
        for side, at in (("service", port), ("reference", ref_port))
    }
    results["rest_uvloop_reference"] = median_run(uv_runs)
    uv_reference.stop()
    reference.stop()
    service.stop()
    results["rest_post"] = rest_post(args, amqp_url, python, project, service_cmd, port, work)
    # On the in-process broker: the route never touches the broker, and the pair shares no queue.
    memory_cmd = [service_bin, "--amqp-url", "memory://", "--http-host", "127.0.0.1"]
    memory_cmd += ["--log-level", "ERROR"]  # not the warning that memory:// loses events
    results["rest_metrics"] = metrics_on_off(memory_cmd, project, args)
    print("metrics' cost inside one process ...", flush=True)
    inside = subprocess.run(
        [python, str(ROOT / "bench/overhead.py")], capture_output=True, text=True, check=True
    )
    results["metrics_cost_us"] = json.loads(inside.stdout.strip().splitlines()[-1])
    off_port = free_port()
    off_cmd = [*base_cmd, "--http-port", str(off_port), "--no-metrics-enabled"]

    # Consume: pre-fill the service's queue while it is stopped, then time it draining; then a
    # raw aio-pika consumer on a queue of its own. Alternated --repeat times; medians reported.
    subprocess.run(
        [uv, "pip", "install", "--quiet", "--compile-bytecode", "--python", python, *PEERS],
        cwd=project,
        check=True,
    )
    bodies = measurement_bodies(args.messages)
    service_rates: list[float] = []
    off_rates: list[float] = []
    raw_rates: list[float] = []
    faststream_rates: list[float] = []
    consume_cpu: list[float] = []
    # Metrics on against off gets twice the rounds: one drain varies by more than they differ.
    rounds = 2 * args.repeat
    for round_ in range(rounds):
        print(f"consume {round_ + 1}/{rounds}: {args.messages} messages each ...", flush=True)
        pair = [(service_rates, service_cmd, port), (off_rates, off_cmd, off_port)]
        for rates, command, at in pair if round_ % 2 == 0 else pair[::-1]:
            drained = consume_service(amqp_url, command, project, at, bodies)
            rates.append(drained["msg_s"])
            if rates is service_rates:
                consume_cpu.append(drained["cpu_us"])
        if round_ >= args.repeat:
            continue
        raw_rates.append(consume_reference(amqp_url, python, "reference_consumer.py", bodies))
        faststream_rates.append(
            consume_reference(amqp_url, python, "reference_faststream.py", bodies)
        )
    results["consume_msg_s"] = {
        "service": statistics.median(service_rates),
        "reference": statistics.median(raw_rates),
        "faststream": statistics.median(faststream_rates),
        "service_metrics_off": statistics.median(off_rates),
        "service_cpu_us": statistics.median(consume_cpu),
        "service_runs": service_rates,
        "service_metrics_off_runs": off_rates,
        "reference_runs": raw_rates,
        "faststream_runs": faststream_rates,
    }

    # Classic queues: the service under a name and exchange of its own (a queue's type is set
    # when it is declared, and the quorum queue must not get these messages too).
    classic_port = free_port()
    classic_cmd = [*base_cmd, "--http-port", str(classic_port), "--queue-type", "classic"]
    classic_cmd += ["--service-name", "bench-classic", "--exchange", "bench-classic"]
    declares = Process(classic_cmd, project, f"http://127.0.0.1:{classic_port}/health/ready")
    declares.ready_after()  # its queue, bound: what is published before its drain waits there
    declares.stop()
    classic: dict[str, list[float]] = {"service": [], "reference": []}
    for round_ in range(args.repeat):
        print(f"consume, classic queues {round_ + 1}/{args.repeat} ...", flush=True)
        drained = consume_service(
            amqp_url, classic_cmd, project, classic_port, bodies, exchange="bench-classic"
        )
        classic["service"].append(drained["msg_s"])
        classic["reference"].append(
            consume_reference(amqp_url, python, "reference_consumer.py", bodies, "classic")
        )
    asyncio.run(delete_service(amqp_url, "bench-classic", "bench-classic"))
    results["consume_classic_msg_s"] = {
        side: statistics.median(runs) for side, runs in classic.items()
    } | {f"{side}_runs": runs for side, runs in classic.items()}
    results["consume_scaling"] = consume_scaling(amqp_url, base_cmd, project, bodies)

    # Mixed load: REST while the service drains a flood, against the same REST idle (above).
    print("REST while consuming a flood ...", flush=True)
    asyncio.run(fill_queue(amqp_url, "events", "measurement.recorded", bodies))
    service = Process(service_cmd, project, f"http://127.0.0.1:{port}/health/live")
    service.ready_after()
    # A fresh process: GET the flood's own sensor (the same JSON shape as the idle run's),
    # once its first message is in, so every request is a 200 and not a 404.
    busy_url = f"http://127.0.0.1:{port}/sensors/consume"
    wait_for(busy_url)
    busy = wrk(busy_url, args.connections, max(args.duration // 2, 1))
    still_queued = asyncio.run(queue_length(amqp_url, service_queue))
    service.stop()
    asyncio.run(purge(amqp_url, service_queue))
    results["rest_while_consuming"] = {"service": busy, "reference": rest}
    results["rest_while_consuming"]["messages_left_at_end"] = still_queued

    # Publish: the service's publisher and raw aio-pika, confirms, 100 awaited together,
    # each serialising the event, in alternated rounds (publish.py).
    print(f"publish: {args.messages // 4} messages a round, 6 rounds each ...", flush=True)
    out = subprocess.run(
        [python, str(ROOT / "bench/publish.py"), amqp_url, str(args.messages // 4), "100"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    results["publish_msg_s"] = {"service": float(out[0]), "reference": float(out[1])}

    results["designs"] = designs(args, amqp_url, python, project, service_cmd, port, bodies)
    return results


def designs(
    args: argparse.Namespace,
    amqp_url: str,
    python: str,
    project: Path,
    service_cmd: list[str],
    port: int,
    bodies: list[bytes],
) -> dict[str, dict[str, float]]:
    """The example's work (``design_work.py``) as the generated service, as one loop without the
    runtime, as threads and as processes: each drains the same messages, then serves GET
    /sensors/consume under wrk at each of DESIGN_CONNECTIONS, sampled halfway through."""
    url = f"http://127.0.0.1:{port}/sensors/consume"
    candidates: dict[str, tuple[list[str], str, str | None]] = {
        "generated service": (service_cmd, "measurement.recorded", None),
    }
    for name, script in (
        ("one loop, no runtime", "design_loop.py"),
        ("threads", "design_threads.py"),
        ("processes", "design_processes.py"),
    ):
        queue = f"bench-design-{uuid4().hex[:6]}"
        command = [python, str(ROOT / "bench" / script), str(port), amqp_url, queue]
        candidates[name] = (command, queue, queue)
    figures: dict[str, dict[str, float]] = {}
    for name, (command, routing_key, own_queue) in candidates.items():
        print(f"design: {name} ...", flush=True)
        if own_queue:
            asyncio.run(declare_queue(amqp_url, own_queue))
        asyncio.run(fill_queue(amqp_url, "" if own_queue else "events", routing_key, bodies))
        process = Process(command, project, f"http://127.0.0.1:{port}/sensors/x", status=404)
        process.ready_after()
        these = {"msg_s": drain_rate([url], len(bodies))}
        for connections in DESIGN_CONNECTIONS:
            load = wrk(url, connections, args.duration, during=process)
            for key in ("req_s", "p99_ms", "rss_mb", "threads", "processes"):
                these[f"{key}_c{connections}"] = load.get(key, load.get(f"{key}_under_load", 0))
        process.stop()
        if own_queue:
            asyncio.run(delete_queue(amqp_url, own_queue))
        figures[name] = these
    return figures


def warm(port: int) -> None:
    """Record one measurement of sensor ``bench``, so that ``/sensors/bench`` answers 200."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/measurements",
        data=b'{"sensor": "bench", "value": 1.0}',
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request).close()
    wait_for(f"http://127.0.0.1:{port}/sensors/bench")


def metrics_on_off(base_cmd: list[str], project: Path, args: argparse.Namespace) -> dict[str, Any]:
    """REST req/s of the service with metrics on and off, in fresh pairs of processes.

    On this machine one process serves a few per cent faster or slower than the next for as
    long as it lives, as much as the difference to measure. So each pair runs side by side,
    timed in rounds of alternating order, and the median of the pairs' ratios is kept.
    """
    servers, clients = cpu_split()
    short = (args.connections, max(1, args.duration // 5))
    pairs = 3 * args.repeat
    print(f"REST metrics on / off: {pairs} pairs of processes ...", flush=True)
    found: dict[str, list[float]] = {"on": [], "off": [], "ratios": []}
    for pair in range(pairs):
        ports = {"on": free_port(), "off": free_port()}
        processes = {
            name: Process(
                [*base_cmd, "--http-port", str(at), *(["--no-metrics-enabled"] * (name == "off"))],
                project,
                f"http://127.0.0.1:{at}/health/ready",
            )
            for name, at in ports.items()
        }
        rates: dict[str, list[float]] = {"on": [], "off": []}
        try:
            for name, process in processes.items():
                process.ready_after()
                warm(ports[name])
                pin(process, servers)
            for round_ in range(2):
                for name in ("on", "off") if (pair + round_) % 2 == 0 else ("off", "on"):
                    url = f"http://127.0.0.1:{ports[name]}/sensors/bench"
                    rates[name].append(wrk(url, *short, cpus=clients)["req_s"])
        finally:
            for process in processes.values():
                process.stop()
        on, off = statistics.mean(rates["on"]), statistics.mean(rates["off"])
        found["on"].append(on)
        found["off"].append(off)
        found["ratios"].append(on / off)
    return {
        "on": statistics.median(found["on"]),
        "off": statistics.median(found["off"]),
        "ratio": statistics.median(found["ratios"]),
        "on_runs": found["on"],
        "off_runs": found["off"],
        "ratios": found["ratios"],
    }


POST_SCRIPT = """wrk.method = "POST"
wrk.body = '{"sensor": "post", "value": 1.5}'
wrk.headers["Content-Type"] = "application/json"
"""


def rest_post(
    args: argparse.Namespace,
    amqp_url: str,
    python: str,
    project: Path,
    service_cmd: list[str],
    port: int,
    work: Path,
) -> dict[str, dict[str, float]]:
    """POST /measurements, which validates the body and publishes the event with a confirm:
    the service against bare aiohttp and raw aio-pika doing the same (``reference_post.py``).
    While it runs, the events go to a queue of their own, so the service does not consume
    what it publishes, which the reference would not do."""
    script = work / "post.lua"
    script.write_text(POST_SCRIPT)
    service = Process(service_cmd, project, f"http://127.0.0.1:{port}/health/ready")
    service.ready_after()
    asyncio.run(reroute(amqp_url, "measurement-service", "bench-post-sink"))
    ref_port = free_port()
    reference = Process(
        [python, str(ROOT / "bench/reference_post.py"), str(ref_port), amqp_url, "events"],
        project,
        f"http://127.0.0.1:{ref_port}/measurements",
        status=405,  # up: GET is not its method
    )
    reference.ready_after()
    servers, clients = cpu_split()
    for process in (service, reference):
        pin(process, servers)
    runs: dict[str, list[dict[str, float]]] = {"service": [], "reference": []}
    for round_ in range(args.repeat):
        print(f"REST POST {round_ + 1}/{args.repeat}: validate and publish ...", flush=True)
        for side, at in (("reference", ref_port), ("service", port)):
            url = f"http://127.0.0.1:{at}/measurements"
            runs[side].append(
                wrk(url, args.connections, args.duration, cpus=clients, script=script)
            )
    reference.stop()
    service.stop()
    asyncio.run(reroute(amqp_url, "bench-post-sink", "measurement-service"))
    return {side: median_run(these) for side, these in runs.items()}


def consume_service(
    amqp_url: str,
    service_cmd: list[str],
    project: Path,
    port: int,
    bodies: list[bytes],
    exchange: str = "events",
) -> dict[str, float]:
    """The service draining ``bodies`` pre-filled into its queue: messages a second, its CPU
    microseconds per message, and, halfway, its RSS and the deliveries it held unsettled."""
    asyncio.run(fill_queue(amqp_url, exchange, "measurement.recorded", bodies))
    service = Process(service_cmd, project, f"http://127.0.0.1:{port}/health/live")
    service.ready_after()
    before = cpu_seconds(service.popen.pid)
    sampled: dict[str, float] = {}

    def sample() -> None:
        sampled["rss_mb"] = rss_mb(service.popen.pid)
        sampled["in_flight"] = _in_flight(port)

    # A fresh process: its count of the sensor starts at zero.
    rate = drain_rate([f"http://127.0.0.1:{port}/sensors/consume"], len(bodies), sample)
    cpu_us = (cpu_seconds(service.popen.pid) - before) / len(bodies) * 1e6
    service.stop()
    return {"msg_s": rate, "cpu_us": cpu_us, **sampled}


def _in_flight(port: int) -> float:
    """The service's ``messages_in_flight`` gauge; -1 with metrics off."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
            text = response.read().decode()
    except urllib.error.HTTPError:
        return -1.0
    found = re.search(r"^measurement_service_messages_in_flight (\S+)$", text, re.M)
    return float(found[1]) if found else -1.0


def consume_scaling(
    amqp_url: str, base_cmd: list[str], project: Path, bodies: list[bytes]
) -> dict[str, dict[str, dict[str, float]]]:
    """How consuming grows: msg/s, RSS and deliveries in flight at prefetch 1 to 1000, RSS
    against the backlog waiting in the queue, and one replica against two competing for it."""
    port = free_port()
    command = [*base_cmd, "--http-port", str(port)]
    scaling: dict[str, dict[str, dict[str, float]]] = {"prefetch": {}, "backlog": {}}
    for prefetch in (1, 10, 100, 1000):
        print(f"consume at prefetch {prefetch} ...", flush=True)
        scaling["prefetch"][str(prefetch)] = consume_service(
            amqp_url, [*command, "--prefetch", str(prefetch)], project, port, bodies
        )
    for depth in (max(len(bodies) // 20, 1000), len(bodies), 5 * len(bodies)):
        print(f"consume a backlog of {depth} ...", flush=True)
        backlog = measurement_bodies(depth)
        scaling["backlog"][str(depth)] = consume_service(amqp_url, command, project, port, backlog)
    scaling["replicas"] = {}
    for replicas in (1, 2):
        print(f"consume with {replicas} replica(s) ...", flush=True)
        asyncio.run(fill_queue(amqp_url, "events", "measurement.recorded", bodies))
        ports = [free_port() for _ in range(replicas)]
        started = [
            Process(
                [*base_cmd, "--http-port", str(at)], project, f"http://127.0.0.1:{at}/health/live"
            )
            for at in ports
        ]
        for process in started:
            process.ready_after()
        urls = [f"http://127.0.0.1:{at}/sensors/consume" for at in ports]
        scaling["replicas"][str(replicas)] = {"msg_s": drain_rate(urls, len(bodies))}
        for process in started:
            process.stop()
    return scaling


def consume_reference(
    amqp_url: str, python: str, script: str, bodies: list[bytes], kind: str = "quorum"
) -> float:
    """Messages a second for a reference consumer to drain ``bodies`` from a queue of its own,
    of ``kind`` (quorum or classic)."""
    queue = f"bench-ref-{uuid4().hex[:6]}"
    asyncio.run(declare_queue(amqp_url, queue, kind))
    asyncio.run(fill_queue(amqp_url, "", queue, bodies))
    out = subprocess.run(
        [python, str(ROOT / "bench" / script), amqp_url, queue, str(len(bodies)), "100"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    asyncio.run(delete_queue(amqp_url, queue))
    return int(out[1]) / float(out[0])


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
        # SIGTERM (say, from `timeout`) unwinds like an error, so nothing is left running.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        try:
            results = run(args, given or (node.url if node else ""), Path(folder))
        finally:
            Process.stop_all()
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
    print()
    print(scaling_table(results))
    print()
    print(designs_table(results["designs"]))
    png = args.output.with_suffix(".png")
    chart(results, png)
    print(f"\nwritten to {args.output} and {png}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
