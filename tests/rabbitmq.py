"""A throwaway RabbitMQ node for the template's tests and benchmark.

Uses Debian's ``rabbitmq-server``; installs it with apt when it is missing and we run as root.
The node lives in a temporary folder on free ports, so it never touches a system RabbitMQ. That
folder is also its working directory and holds any Erlang crash dump, so nothing lands in the
caller's directory, and ``stop`` removes everything it started. Example use::

    with ThrowawayRabbitMQ() as rabbit:
        run_tests(amqp_url=rabbit.url)
"""

from __future__ import annotations

import contextlib
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

SERVER_DIRS = ("/usr/lib/rabbitmq/bin", "/usr/sbin", "/usr/local/sbin", "/usr/bin")
HOW_TO_PROVIDE = (
    "no RabbitMQ: set AMQP_URL to one (amqp://guest:guest@host:5672/), install Debian's "
    "rabbitmq-server, or run `docker run -d -p 5672:5672 rabbitmq:3`"
)


class RabbitMQUnavailable(RuntimeError):
    """No RabbitMQ can be started here; the message says how to provide one."""


def find_tool(name: str) -> str | None:
    for folder in SERVER_DIRS:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def ensure_installed() -> str:
    """The path of ``rabbitmq-server``, installing Debian's package if root may do so."""
    server = find_tool("rabbitmq-server")
    if server:
        return server
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RabbitMQUnavailable(HOW_TO_PROVIDE)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "rabbitmq-server"],
    ):
        if subprocess.run(command, env=env, capture_output=True, check=False).returncode:
            raise RabbitMQUnavailable(f"`{' '.join(command)}` failed; " + HOW_TO_PROVIDE)
    server = find_tool("rabbitmq-server")
    if not server:
        raise RabbitMQUnavailable("rabbitmq-server is still missing after apt-get install")
    return server


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


class ThrowawayRabbitMQ:
    """One RabbitMQ node in a temporary folder; ``url`` is its AMQP URL once started."""

    def __init__(self, start_timeout: float = 90.0, node: str | None = None) -> None:
        self.start_timeout = start_timeout
        self.port = 0
        self.url = ""
        self.folder: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._env: dict[str, str] = {}
        self.node = node or f"template-test-{os.getpid()}-{uuid.uuid4().hex[:6]}@localhost"
        self._epmd_was_running = False

    def __enter__(self) -> ThrowawayRabbitMQ:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> None:
        server = ensure_installed()
        self._epmd_was_running = _epmd_running()
        self.folder = Path(tempfile.mkdtemp(prefix="rabbitmq-"))
        self.port = free_port()
        (self.folder / "enabled_plugins").write_text("[].\n")
        self._env = {
            **os.environ,
            "HOME": str(self.folder),  # where Erlang keeps the cookie the CLI tools need
            "RABBITMQ_NODENAME": self.node,
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
        self._start_node(server)
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _start_node(self, server: str) -> None:
        assert self.folder is not None
        with open(self.folder / "server.log", "ab") as log:
            self._process = subprocess.Popen(
                [server],
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.folder,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while not amqp_answers(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                tail = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RabbitMQUnavailable(f"rabbitmq-server did not start:\n{tail}")
            time.sleep(0.2)

    @property
    def restart_command(self) -> str:
        """A shell command that restarts RabbitMQ on this node, as a broker restart does: every
        connection is closed, and queues and messages come back from disk."""
        ctl = shlex.quote(find_tool("rabbitmqctl") or "rabbitmqctl")
        folder = shlex.quote(self._env["HOME"])
        env = f"HOME={folder} ERL_CRASH_DUMP={folder}/erl_crash.dump"
        prefix = f"{env} {ctl} -n {shlex.quote(self.node)}"
        return f"cd {folder} && {prefix} stop_app && {prefix} start_app"

    def restart(self) -> None:
        """Stop the node and start it again on the same port, keeping its data."""
        self._stop_node()
        self._start_node(ensure_installed())

    def stop(self) -> None:
        self._stop_node()
        if not self._epmd_was_running:
            epmd = find_tool("epmd") or "/usr/lib/erlang/bin/epmd"
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                subprocess.run([epmd, "-kill"], capture_output=True, timeout=10, check=False)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def _stop_node(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        ctl = find_tool("rabbitmqctl")
        if ctl:
            with contextlib.suppress(subprocess.SubprocessError):
                subprocess.run(
                    [ctl, "-n", self.node, "stop"],
                    env=self._env,
                    cwd=self.folder,
                    capture_output=True,
                    timeout=30,
                )
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # The Erlang VM may leave helpers (inet_gethost, erl_child_setup) in its group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _epmd_running() -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", 4369)) == 0
