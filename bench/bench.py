"""The benchmark: figures for the single-loop design, each against a reference run beside it.

Renders the default service into a temporary folder, installs it, starts RabbitMQ the way the
tests do (or uses AMQP_URL), measures, prints one table and writes bench/results/latest.json.
Run it as ``bash bench/run``; ``--help`` lists the knobs.

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
import contextlib
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
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
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
        except urllib.error.HTTPError as error:
            if error.code == status:
                return time.perf_counter() - began
        except OSError:
            pass
        time.sleep(0.005)
    raise TimeoutError(f"{url} did not answer {status} within {within}s")


class Process:
    """A server process started now, timed from its start."""

    running: ClassVar[list[Process]] = []  # stopped by stop_all() whatever happens

    def __init__(self, command: list[str], cwd: Path, ready_url: str, status: int = 200) -> None:
        self.started = time.perf_counter()
        self.popen = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: children are counted and stopped
        )
        self.ready_url, self.ready_status = ready_url, status
        Process.running.append(self)

    @classmethod
    def stop_all(cls) -> None:
        for process in list(cls.running):
            process.stop()

    def ready_after(self) -> float:
        wait_for(self.ready_url, self.ready_status)
        return time.perf_counter() - self.started

    def group(self) -> list[int]:
        """The pids of this process and every process it started."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.popen.pid:  # process group id
                pids.append(int(stat.parent.name))
        return pids

    def footprint(self) -> dict[str, float]:
        """Total RSS, threads and processes of the group."""
        pids = self.group()
        threads = sum(
            int(line.split()[1])
            for pid in pids
            for line in Path(f"/proc/{pid}/status").read_text().splitlines()
            if line.startswith("Threads:")
        )
        return {
            "rss_mb": sum(rss_mb(pid) for pid in pids),
            "threads": threads,
            "processes": len(pids),
        }

    def stop(self) -> None:
        if self in Process.running:
            Process.running.remove(self)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)  # what SIGTERM left behind


def cpu_split() -> tuple[set[int], set[int]]:
    """The CPUs for the servers under test and for the load generator: one each, if there are
    two or more, so that neither steals the other's time and runs compare like with like."""
    cpus = sorted(os.sched_getaffinity(0))
    return ({cpus[-1]}, set(cpus[:-1])) if len(cpus) > 1 else (set(cpus), set(cpus))


def pin(process: Process, cpus: set[int]) -> None:
    for pid in process.group():
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(pid, cpus)


def wrk(
    url: str,
    connections: int,
    seconds: int,
    during: Process | None = None,
    cpus: set[int] | None = None,
    script: Path | None = None,
) -> dict[str, float]:
    """wrk's req/s, p50 and p99, and how many answers were not 2xx or 3xx, on ``cpus`` if
    given, running a Lua ``script`` if given; with ``during``, that process group's footprint
    mid-run."""
    load = subprocess.Popen(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", url]
        + (["-s", str(script)] if script else []),
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )
    footprint: dict[str, float] = {}
    if during is not None:
        time.sleep(seconds / 2)
        footprint = during.footprint()
    out, _ = load.communicate()
    if load.returncode:
        raise RuntimeError(f"wrk failed on {url}")

    def latency_ms(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert match, out
        value, unit = float(match[1]), match[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    served = re.search(r"(\d+) requests in", out)
    assert rate and served, out
    figures = {"req_s": float(rate[1]), "p50_ms": latency_ms("50"), "p99_ms": latency_ms("99")}
    figures["requests"] = float(served[1])
    failed = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["not_2xx"] = float(failed[1]) if failed else 0.0
    return figures | {f"{key}_under_load": value for key, value in footprint.items()}


async def fill_queue(url: str, exchange: str, routing_key: str, bodies: list[bytes]) -> None:
    import aio_pika

    # Confirmed, and all in flight at once: closing an aio-pika connection drops what it has not
    # written yet, so unconfirmed publishes could leave the queue short.
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange) if exchange else channel.default_exchange
        for at in range(0, len(bodies), 10_000):  # a deep backlog in slices: bounded memory
            await asyncio.gather(
                *(
                    target.publish(
                        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT),
                        routing_key=routing_key,
                    )
                    for body in bodies[at : at + 10_000]
                )
            )


async def queue_length(url: str, name: str) -> int:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(name, passive=True)
        return queue.declaration_result.message_count or 0


# What the other designs and the peer need beside the service (not in its dependencies).
PEERS = ("pika", "faststream[rabbit]")


def measurement_bodies(count: int) -> list[bytes]:
    now = datetime.now(UTC).isoformat()
    return [
        json.dumps(
            {"id": str(uuid4()), "sensor": "consume", "value": 1.0, "recorded_at": now}
        ).encode()
        for _ in range(count)
    ]


# aiohttp.web, not just aiohttp: the package alone is its client; a REST service needs the server.
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


def run(args: argparse.Namespace, amqp_url: str, work: Path) -> dict[str, Any]:
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
    asyncio.run(_purge(amqp_url, service_queue))  # an earlier run's leftovers are not idle work
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
    rest, ref_rest = _median_run(rest_runs), _median_run(ref_runs)
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
    results["rest_one_connection"] = {side: _median_run(runs) for side, runs in one.items()}
    print("REST at 1, 8, 64 and 256 connections ...", flush=True)
    results["rest_scaling"] = {
        side: {
            str(c): wrk(f"http://127.0.0.1:{at}/sensors/bench", c, args.duration, cpus=clients)
            for c in REST_CONNECTIONS
        }
        for side, at in (("service", port), ("reference", ref_port))
    }
    results["rest_uvloop_reference"] = _median_run(uv_runs)
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
    asyncio.run(_delete_service(amqp_url, "bench-classic", "bench-classic"))
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
    asyncio.run(_purge(amqp_url, service_queue))
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

    results["designs"] = designs(args, amqp_url, python, project, service_cmd, port, bodies)
    return results


DESIGN_CONNECTIONS = (1, 64, 256, 1000)
REST_CONNECTIONS = (1, 8, 64, 256)


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
            asyncio.run(_declare(amqp_url, own_queue))
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
            asyncio.run(_delete(amqp_url, own_queue))
        figures[name] = these
    return figures


def drain_rate(
    count_urls: list[str], goal: int, halfway: Callable[[], None] | None = None
) -> float:
    """Messages a second, polling ``count_urls`` (replicas' counts add up): from the moment
    every one of them has counted a first message (or, if one never did, any; or, if all of it
    came between two polls, from the call) to the last message. ``halfway`` is called once
    half of ``goal`` is counted, to sample meanwhile."""
    first: dict[str, tuple[float, int]] = {}
    entered = time.perf_counter()
    deadline = entered + 600
    while True:
        counts = [_count_at(url) for url in count_urls]
        count, now = sum(counts), time.perf_counter()
        if count and "any" not in first:
            first["any"] = (now, count)
        if all(counts) and "all" not in first:
            first["all"] = (now, count)
        if halfway is not None and count >= goal / 2:
            halfway()
            halfway = None
        if count >= goal:
            began, first_count = first.get("all", first["any"])
            if now == began:  # all of it between two polls: time it from the call instead
                began, first_count = entered, 0
            return (goal - first_count) / (now - began)
        if now > deadline:
            raise TimeoutError(f"{count_urls}: {count} of {goal} messages in 600 s")
        time.sleep(0.01)


def _count_at(url: str) -> int:
    try:
        with urllib.request.urlopen(url) as response:
            return int(json.loads(response.read())["count"])
    except OSError:
        return 0


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


def _median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median req/s (its latencies come with it)."""
    return sorted(runs, key=lambda run: run["req_s"])[len(runs) // 2]


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
    asyncio.run(_reroute(amqp_url, "measurement-service", "bench-post-sink"))
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
    asyncio.run(_reroute(amqp_url, "bench-post-sink", "measurement-service"))
    return {side: _median_run(these) for side, these in runs.items()}


async def _reroute(url: str, away_from: str, to: str) -> None:
    """Bind queue ``to`` to measurement.recorded on the events exchange and unbind
    ``away_from``; the sink queue is made on the way there and deleted on the way back."""
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange("events")
        if to == "bench-post-sink":
            await channel.declare_queue(to, durable=True, arguments={"x-queue-type": "quorum"})
        target = await channel.get_queue(to)
        await target.bind(exchange, "measurement.recorded")
        source = await channel.get_queue(away_from)
        await source.unbind(exchange, "measurement.recorded")
        if away_from == "bench-post-sink":
            await channel.queue_delete(away_from)


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
    asyncio.run(_declare(amqp_url, queue, kind))
    asyncio.run(fill_queue(amqp_url, "", queue, bodies))
    out = subprocess.run(
        [python, str(ROOT / "bench" / script), amqp_url, queue, str(len(bodies)), "100"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    asyncio.run(_delete(amqp_url, queue))
    return int(out[1]) / float(out[0])


async def _purge(url: str, name: str) -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await (await channel.get_queue(name)).purge()


async def _delete(url: str, name: str) -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def _declare(url: str, name: str, kind: str = "quorum") -> None:
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        await channel.declare_queue(name, durable=True, arguments={"x-queue-type": kind})


async def _delete_service(url: str, name: str, exchange: str) -> None:
    """The queues and exchange of a service that ran under ``name`` for one measurement."""
    import aio_pika

    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel()
        for queue in (name, f"{name}.retry", f"{name}.dead-letter"):
            await channel.queue_delete(queue)
        await channel.exchange_delete(exchange)


def _share(cost: dict[str, float], path: str, cpu_us: float) -> dict[str, float]:
    """What metrics add to one ``path`` (get or delivery), against its CPU time in the service."""
    added = cost[f"{path}_on"] - cost[f"{path}_off"]
    return {"service": added, "reference": cpu_us, "ratio": added / cpu_us}


def table(results: dict[str, Any]) -> str:
    floor = results["import_floor"]
    rows = [
        ("start to ready (s)", results["start_to_ready_s"]),
        (
            "start to ready (s) / import floor (s), difference",
            _difference(results["start_to_ready_s"]["service"], floor["import_s"]),
        ),
        ("idle CPU (% of a core)", results["idle_cpu_percent"]),
        ("idle RSS (MB)", results["idle_rss_mb"]),
        (
            "idle RSS (MB) / import floor (MB), difference",
            _difference(results["idle_rss_mb"]["service"], floor["rss_mb"]),
        ),
        ("REST req/s", _pick(results["rest"], "req_s")),
        (
            "REST req/s / bare aiohttp on uvloop",
            {
                "service": results["rest"]["service"]["req_s"],
                "reference": results["rest_uvloop_reference"]["req_s"],
            },
        ),
        ("REST req/s, 1 connection", _pick(results["rest_one_connection"], "req_s")),
        ("REST POST req/s, validate + confirmed publish", _pick(results["rest_post"], "req_s")),
        ("REST p50 (ms)", _pick(results["rest"], "p50_ms")),
        ("REST p99 (ms)", _pick(results["rest"], "p99_ms")),
        ("REST p50 (ms), 1 connection", _pick(results["rest_one_connection"], "p50_ms")),
        ("consume msg/s, quorum queue", results["consume_msg_s"]),
        ("consume msg/s, classic queue", results["consume_classic_msg_s"]),
        (
            "consume msg/s: FastStream / raw aio-pika",
            {
                "service": results["consume_msg_s"]["faststream"],
                "reference": results["consume_msg_s"]["reference"],
            },
        ),
        ("publish msg/s, confirmed", results["publish_msg_s"]),
        (
            "REST req/s, metrics on / off",
            {
                "service": results["rest_metrics"]["on"],
                "reference": results["rest_metrics"]["off"],
                "ratio": results["rest_metrics"]["ratio"],  # of each pair, not of the medians
            },
        ),
        (
            "metrics' cost per GET (us) / CPU per GET (us)",
            _share(results["metrics_cost_us"], "get", results["rest"]["service"]["cpu_us"]),
        ),
        (
            "metrics' cost per delivery (us) / CPU per delivery (us)",
            _share(
                results["metrics_cost_us"], "delivery", results["consume_msg_s"]["service_cpu_us"]
            ),
        ),
        (
            "consume msg/s, metrics on / off",
            {
                "service": results["consume_msg_s"]["service"],
                "reference": results["consume_msg_s"]["service_metrics_off"],
            },
        ),
        (
            "REST p99 (ms) consuming / idle",
            {k: results["rest_while_consuming"][k]["p99_ms"] for k in ("service", "reference")},
        ),
    ]
    lines = [
        "| figure | service | reference | service / reference |",
        "|---|---:|---:|---:|",
    ]
    for name, pair in rows:
        ratio = f"{pair['service'] / pair['reference']:.2f}" if pair["reference"] else "n/a"
        if "ratio" in pair:
            ratio = f"{pair['ratio']:.3f}"
        if "difference" in pair:
            ratio = f"{pair['difference']:+.3g}"
        lines.append(f"| {name} | {pair['service']:.3g} | {pair['reference']:.3g} | {ratio} |")
    return "\n".join(lines)


def scaling_table(results: dict[str, Any]) -> str:
    """How the service's cost grows: REST with connections, consuming with prefetch, memory
    with deliveries in flight and with the backlog, throughput with replicas."""
    rest = results["rest_scaling"]
    lines = [
        "| connections | service req/s | p99 (ms) | bare aiohttp req/s | p99 (ms) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for c in REST_CONNECTIONS:
        mine, bare = rest["service"][str(c)], rest["reference"][str(c)]
        lines.append(
            f"| {c} | {mine['req_s']:.0f} | {mine['p99_ms']:.2f} | {bare['req_s']:.0f} "
            f"| {bare['p99_ms']:.2f} |"
        )
    consume = results["consume_scaling"]
    lines += [
        "",
        "| consuming | msg/s | deliveries in flight | RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    for kind, label in (("prefetch", "prefetch {}"), ("backlog", "backlog of {} messages")):
        for key, f in consume[kind].items():
            lines.append(
                f"| {label.format(key)} | {f['msg_s']:.0f} | {f['in_flight']:.0f} "
                f"| {f['rss_mb']:.1f} |"
            )
    for key, f in consume["replicas"].items():
        lines.append(f"| {key} replica(s), one queue | {f['msg_s']:.0f} | | |")
    return "\n".join(lines)


def _difference(service: float, reference: float) -> dict[str, float]:
    return {"service": service, "reference": reference, "difference": service - reference}


def designs_table(designs: dict[str, dict[str, float]]) -> str:
    lines = [
        "| design | connections | req/s | p99 (ms) | RSS (MB) | threads | processes | msg/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, f in designs.items():
        for c in DESIGN_CONNECTIONS:
            lines.append(
                f"| {name} | {c} | {f[f'req_s_c{c}']:.0f} | {f[f'p99_ms_c{c}']:.2f} "
                f"| {f[f'rss_mb_c{c}']:.1f} | {f[f'threads_c{c}']:.0f} "
                f"| {f[f'processes_c{c}']:.0f} | {f['msg_s']:.0f} |"
            )
    return "\n".join(lines)


def _pick(pairs: dict[str, dict[str, float]], key: str) -> dict[str, float]:
    return {side: values[key] for side, values in pairs.items()}


def chart(results: dict[str, Any], path: Path) -> None:
    """The figures as one PNG: the ratios to the references, how the service's cost grows with
    connections, prefetch, backlog and replicas, and the four designs side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, panels = plt.subplots(2, 4, figsize=(22, 9))
    ratios = {
        "REST req/s\n64 conns": _ratio(_pick(results["rest"], "req_s")),
        "REST req/s\n1 conn": _ratio(_pick(results["rest_one_connection"], "req_s")),
        "REST POST\n+ publish": _ratio(_pick(results["rest_post"], "req_s")),
        "consume\nquorum": _ratio(results["consume_msg_s"]),
        "consume\nclassic": _ratio(results["consume_classic_msg_s"]),
        "publish": _ratio(results["publish_msg_s"]),
    }
    ratio_panel = panels[0][0]
    ratio_panel.bar(list(ratios), list(ratios.values()), color="#4878a8")
    ratio_panel.axhline(1.0, color="black", linewidth=0.8)
    ratio_panel.set_title("service / reference (bare aiohttp, raw aio-pika)")
    ratio_panel.tick_params(axis="x", labelsize=8)

    rest_panel = panels[0][1]
    for side, style in (("service", "o-"), ("reference", "s--")):
        runs = results["rest_scaling"][side]
        rest_panel.plot(REST_CONNECTIONS, [runs[str(c)]["req_s"] for c in REST_CONNECTIONS], style)
    rest_panel.set_xscale("log")
    rest_panel.set_title("REST req/s (lines) and p99 ms (bars) by connections")
    rest_panel.legend(["service", "bare aiohttp"], fontsize=8)
    p99 = rest_panel.twinx()
    p99.bar(
        REST_CONNECTIONS,
        [results["rest_scaling"]["service"][str(c)]["p99_ms"] for c in REST_CONNECTIONS],
        width=[c * 0.3 for c in REST_CONNECTIONS],
        alpha=0.25,
        color="#c44e52",
    )

    consume = results["consume_scaling"]
    prefetch = [int(key) for key in consume["prefetch"]]
    prefetch_panel = panels[0][2]
    prefetch_panel.plot(prefetch, [f["msg_s"] for f in consume["prefetch"].values()], "o-")
    prefetch_panel.set_xscale("log")
    prefetch_panel.set_title("consume msg/s by prefetch")

    replicas_panel = panels[0][3]
    replicas = consume["replicas"]
    replicas_panel.bar(
        [f"{key} replica(s)" for key in replicas], [f["msg_s"] for f in replicas.values()]
    )
    replicas_panel.set_title("consume msg/s, competing replicas on one queue")

    memory_panel = panels[1][0]
    bound, backlog = consume["prefetch"], consume["backlog"]
    memory_panel.plot(
        [int(prefetch) for prefetch in bound],
        [f["rss_mb"] for f in bound.values()],
        "o-",
        label="prefetch: the bound on deliveries in flight",
    )
    memory_panel.plot(
        [int(depth) for depth in backlog],
        [f["rss_mb"] for f in backlog.values()],
        "s--",
        label="backlog waiting in the queue",
    )
    memory_panel.set_xscale("log")
    memory_panel.set_ylim(bottom=0)
    memory_panel.set_title("service RSS (MB) by messages")
    memory_panel.legend(fontsize=8)

    designs = results["designs"]
    for name, f in designs.items():
        panels[1][1].plot(
            DESIGN_CONNECTIONS, [f[f"req_s_c{c}"] for c in DESIGN_CONNECTIONS], "o-", label=name
        )
        panels[1][2].plot(
            DESIGN_CONNECTIONS, [f[f"rss_mb_c{c}"] for c in DESIGN_CONNECTIONS], "o-", label=name
        )
    for panel, title in (
        (panels[1][1], "designs: req/s by connections"),
        (panels[1][2], "designs: RSS (MB) by connections"),
    ):
        panel.set_xscale("log")
        panel.set_title(title)
        panel.legend(fontsize=8)
    panels[1][2].set_ylim(bottom=0)
    panels[1][3].bar(list(designs), [f["msg_s"] for f in designs.values()], color="#55a868")
    panels[1][3].set_title("designs: consume msg/s, the same handler")
    panels[1][3].tick_params(axis="x", labelsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=80)


def _ratio(pair: dict[str, float]) -> float:
    return pair["service"] / pair["reference"] if pair["reference"] else 0.0


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
