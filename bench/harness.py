"""The benchmark's processes and load: starting and timing servers, pinning them to cores,
wrk, and the drain rate of a consumer. Used by ``bench.py``::

    process = Process(command, cwd, "http://127.0.0.1:8080/health/ready")
    process.ready_after()  # seconds from start to ready
    wrk("http://127.0.0.1:8080/sensors/bench", 64, 10)  # req/s, p50, p99, ...
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

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


DESIGN_CONNECTIONS = (1, 64, 256, 1000)


REST_CONNECTIONS = (1, 8, 64, 256)


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


def median_run(runs: list[dict[str, float]]) -> dict[str, float]:
    """The run with the median req/s (its latencies come with it)."""
    return sorted(runs, key=lambda run: run["req_s"])[len(runs) // 2]
