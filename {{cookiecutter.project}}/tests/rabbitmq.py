"""Throwaway RabbitMQ for tests: one node, or a cluster of three, from Debian's rabbitmq-server.

Every node runs on free loopback ports, with its data in a temporary folder, so it never
touches a system RabbitMQ; that folder is also its working directory and holds any Erlang
crash dump, and ``stop`` removes it with everything it started. A cluster's nodes share one
home folder, hence one Erlang cookie, and join the first node with ``rabbitmqctl``. Example
use::

    with ThrowawayCluster() as cluster:
        run_service(amqp_url=cluster.url)  # the three nodes' URLs, comma-separated
        cluster.kill(cluster.leader("my-service"))  # SIGKILL, as a crashed host
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Self

SERVER_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/sbin", "/usr/local/sbin", "/usr/bin")
NOT_INSTALLED = "rabbitmq-server is not installed (on Debian: apt-get install rabbitmq-server)"


class RabbitMQStartError(RuntimeError):
    """No RabbitMQ can be started here; the message's first line says why."""


def find_tool(name: str) -> str | None:
    """The path of RabbitMQ's or Erlang's command ``name``, or None."""
    for folder in SERVER_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def amqp_answers(port: int, host: str = "127.0.0.1") -> bool:
    """Whether an AMQP 0-9-1 server answers the protocol header on ``port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return sock.recv(1) == b"\x01"  # the first byte of a Connection.Start frame
    except OSError:
        return False


class Node:
    """One RabbitMQ node named ``name``, its data in ``home/<short name>``.

    ``start`` and ``stop`` may be called again and again; the node keeps its ports and data.
    """

    def __init__(self, home: Path, name: str, start_timeout: float = 90.0) -> None:
        self.name = name
        self.folder = home / name.partition("@")[0]
        self.port = free_port()
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"
        self.start_timeout = start_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self.env = {
            **os.environ,
            "HOME": str(home),  # where Erlang keeps the cookie that nodes and CLI tools share
            "RABBITMQ_NODENAME": name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(free_port()),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "RABBITMQ_PID_FILE": str(self.folder / "rabbitmq.pid"),
            # The VM writes erl_crash.dump into its working directory unless told otherwise.
            "ERL_CRASH_DUMP": str(self.folder / "erl_crash.dump"),
        }

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def launch(self) -> None:
        """Start the node's VM; ``wait_started`` waits until it serves AMQP."""
        server = find_tool("rabbitmq-server")
        if server is None:
            raise RabbitMQStartError(NOT_INSTALLED)
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n")
        with open(self.folder / "server.log", "ab") as log:
            self._process = subprocess.Popen(
                [server],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
            )

    def wait_started(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while not amqp_answers(self.port):
            if not self.running or time.monotonic() > deadline:
                tail = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                raise RabbitMQStartError(f"rabbitmq-server did not start:\n{tail}")
            time.sleep(0.2)

    def start(self) -> None:
        self.launch()
        self.wait_started()

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """Run ``rabbitmqctl -n <node> args``; its output, or RabbitMQStartError if it fails."""
        command = [find_tool("rabbitmqctl") or "rabbitmqctl", "-n", self.name, *args]
        try:
            result = subprocess.run(
                command,
                env=self.env,
                cwd=self.folder,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise RabbitMQStartError(
                f"`rabbitmqctl {' '.join(args)}` took over {timeout}s"
            ) from None
        if result.returncode:
            raise RabbitMQStartError(f"`rabbitmqctl {' '.join(args)}` failed: {result.stderr}")
        return result.stdout

    @property
    def restart_command(self) -> str:
        """A shell command that restarts RabbitMQ on this node, as a broker restart does: every
        connection is closed, and queues and messages come back from disk."""
        ctl = shlex.quote(find_tool("rabbitmqctl") or "rabbitmqctl")
        home, folder = shlex.quote(self.env["HOME"]), shlex.quote(str(self.folder))
        env = f"HOME={home} ERL_CRASH_DUMP={folder}/erl_crash.dump"
        prefix = f"{env} {ctl} -n {shlex.quote(self.name)}"
        return f"cd {folder} && {prefix} stop_app && {prefix} start_app"

    def stop(self) -> None:
        """Stop the node as an operator does (``rabbitmqctl stop``); safe when it is not up."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(RabbitMQStartError):
            self.ctl("stop", timeout=30)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # The Erlang VM may leave helpers (inet_gethost, erl_child_setup) in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the node's VM, as a crashed host or an OOM kill would."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


class _Throwaway:
    """A home folder for nodes, and the cleanup of everything started in it."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.nodes: list[Node] = []
        self._epmd_was_running = False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        raise NotImplementedError

    def _home(self) -> Path:
        if find_tool("rabbitmq-server") is None:
            raise RabbitMQStartError(NOT_INSTALLED)
        self._epmd_was_running = _epmd_running()
        self.folder = Path(tempfile.mkdtemp(prefix="rabbitmq-"))
        return self.folder

    def stop(self) -> None:
        """Stop every node and remove the folder; safe twice."""
        for node in self.nodes:
            node.stop()
        if not self._epmd_was_running:
            epmd = find_tool("epmd") or "/usr/lib/erlang/bin/epmd"
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([epmd, "-kill"], capture_output=True, timeout=10, check=False)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None


class ThrowawayRabbitMQ(_Throwaway):
    """One RabbitMQ node in a temporary folder; ``url`` is its AMQP URL once started."""

    def __init__(self, start_timeout: float = 90.0, node: str | None = None) -> None:
        super().__init__()
        self.start_timeout = start_timeout
        self.node = node or f"test-{os.getpid()}-{uuid.uuid4().hex[:6]}@localhost"
        self.port = 0
        self.url = ""
        self.restart_command = ""

    def start(self) -> None:
        node = Node(self._home(), self.node, self.start_timeout)
        self.nodes = [node]
        try:
            node.start()
        except RabbitMQStartError:
            self.stop()
            raise
        self.port, self.url, self.restart_command = node.port, node.url, node.restart_command

    def restart(self) -> None:
        """Stop the node and start it again on the same port, keeping its data."""
        self.nodes[0].stop()
        self.nodes[0].start()


class ThrowawayCluster(_Throwaway):
    """``size`` RabbitMQ nodes joined in one cluster; ``url`` lists their URLs."""

    def __init__(self, size: int = 3, start_timeout: float = 90.0) -> None:
        super().__init__()
        self.size = size
        self.start_timeout = start_timeout
        self.url = ""

    def start(self) -> None:
        home = self._home()
        prefix = f"cluster-{os.getpid()}-{uuid.uuid4().hex[:4]}"
        self.nodes = [
            Node(home, f"{prefix}-{i + 1}@localhost", self.start_timeout) for i in range(self.size)
        ]
        try:
            for node in self.nodes:  # in parallel: each takes seconds to boot
                node.launch()
            for node in self.nodes:
                node.wait_started()
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.name)
                node.ctl("start_app")
            running = self.running_nodes()
            if sorted(running) != sorted(node.name for node in self.nodes):
                raise RabbitMQStartError(f"the cluster formed with {running} only")
        except RabbitMQStartError:
            self.stop()
            raise
        self.url = ",".join(node.url for node in self.nodes)

    def running_nodes(self) -> list[str]:
        """The cluster's running nodes, as any running node sees them."""
        status = json.loads(self._a_running_node().ctl("cluster_status", "--formatter", "json"))
        return list(status["running_nodes"])

    def _a_running_node(self) -> Node:
        """A node to ask about the cluster: any that runs (a test may have stopped others)."""
        return next(node for node in self.nodes if node.running)

    def node_at(self, port: int) -> Node:
        return next(node for node in self.nodes if node.port == port)

    def leader(self, queue: str) -> Node:
        """The node that holds quorum queue ``queue``'s leader."""
        listing = self._a_running_node().ctl("list_queues", "name", "leader", "--formatter", "json")
        rows = json.loads(listing)
        name = next(row["leader"] for row in rows if row["name"] == queue)
        return next(node for node in self.nodes if node.name == name)


def _epmd_running() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 4369)) == 0
