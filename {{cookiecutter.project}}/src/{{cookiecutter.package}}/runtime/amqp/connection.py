"""The connection to RabbitMQ, and getting it back: to any node of a cluster, with capped
backoff and jitter, a probe that notices at once when a broker that refused connections accepts
them again, and an outage told in a few log lines rather than one per attempt.

An outage is logged once as a WARNING when it starts, again every ``outage_reminder`` seconds
while it lasts, and once as INFO when the service works again; single attempts log at DEBUG.
Example use::

    link = Link(settings)
    connection = await link.open()  # at start-up: tries for up to connect_timeout seconds
    connection = await link.reconnect("connection reset")  # after a loss: returns once connected
    link.recovered()  # channels and consumer are back too: the outage is over
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection
from yarl import URL

from ..broker import StartupError
from ..settings import ENV_PREFIX, RuntimeSettings

log = logging.getLogger(__name__)

# What aio-pika and aiormq raise when a connection attempt fails (refused, unreachable, timed
# out, turned away by RabbitMQ) or a connection or channel is gone or going. aio-pika's own
# exceptions are aiormq's; TimeoutError and ConnectionError are OSErrors. A channel that closed
# under a publish raises ChannelInvalidStateError, a RuntimeError rather than an AMQPError.
AMQP_ERRORS = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError, OSError)


def describe(exc: BaseException | None) -> str:
    """An exception as one short line for logs and readiness."""
    if exc is None:
        return "closed without a reason"
    text = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {text}"[:300]


class Backoff:
    """Pauses that double from ``first`` up to ``cap``, each a random 50 to 100 % of its step,
    so replicas that lost the broker together do not come back in step."""

    def __init__(self, first: float, cap: float) -> None:
        self.first = first
        self.cap = cap
        self.step = 0

    def next(self) -> float:
        ceiling = min(self.first * 2.0 ** min(self.step, 30), self.cap)
        self.step += 1
        return ceiling * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self.step = 0


class Link:
    """Opens connections to a RabbitMQ node of ``settings.amqp_url`` and keeps the outage's story.

    With several nodes (a cluster), each round of attempts tries every node once, in a shuffled
    order so that replicas spread over the nodes, with the node just lost last; the backoff
    pause comes between rounds. ``node`` is the node in use, or the one last tried.
    """

    def __init__(self, settings: RuntimeSettings) -> None:
        self.nodes = [_with_heartbeat(URL(url), settings.heartbeat) for url in settings.amqp_nodes]
        self.node = self.nodes[0]
        self._settings = settings
        self._backoff = Backoff(settings.reconnect_interval, settings.reconnect_max)
        self.down_since: float | None = None  # loop time the current outage began
        self.attempts = 0
        self.last_error = ""
        self._lost = self.node
        self._reminded = 0.0
        self._port_was_open = True  # what the last probe saw

    @property
    def safe_url(self) -> str:
        """The node in use (or last tried), without its password and query."""
        return _safe(self.node)

    @property
    def places(self) -> str:
        """Where the service looks for RabbitMQ, for messages: one node, or all of them."""
        if len(self.nodes) == 1:
            return f"RabbitMQ at {self.safe_url}"
        return f"RabbitMQ at any of {len(self.nodes)} nodes ({', '.join(map(_safe, self.nodes))})"

    async def open(self) -> AbstractConnection:
        """Connect at start-up, trying again with backoff for up to ``connect_timeout`` seconds.

        Raise ``StartupError`` saying what to do if no node can be reached in that time.
        """
        timeout = self._settings.connect_timeout
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            order = self._round()
            for tried, node in enumerate(order):
                # A node that drops packets must not take the time the others would need.
                share = (deadline - loop.time()) / (len(order) - tried)
                try:
                    connection = await self._connect(node, max(share, 0.1))
                except AMQP_ERRORS as exc:
                    self.last_error = describe(exc)
                    continue
                self._backoff.reset()
                return connection
            left = deadline - loop.time()
            if left <= 0:
                raise StartupError(
                    f"{self.places} could not be reached within {timeout:g}s "
                    f"(last error, from {self.safe_url}: {self.last_error}); start it or set "
                    f"{ENV_PREFIX}AMQP_URL (memory:// runs without RabbitMQ)"
                )
            if self._backoff.step == 0:
                log.warning(
                    "%s is not reachable yet (%s); trying for up to %gs",
                    self.places,
                    self.last_error,
                    timeout,
                )
            await asyncio.sleep(min(self._backoff.next(), left))

    async def reconnect(self, reason: str) -> AbstractConnection:
        """Connect again after ``reason`` took the connection away; return once connected.

        The first call of an outage logs it; the outage lasts until ``recovered``.
        """
        loop = asyncio.get_running_loop()
        if self.down_since is None:
            self.down_since = self._reminded = loop.time()
            self.attempts = 0
            self.last_error = reason
            self._lost = self.node
            self._port_was_open = True
            log.warning(
                "lost the connection to RabbitMQ at %s (%s); reconnecting", self.safe_url, reason
            )
        failed = False
        while True:
            await self._pause(self._backoff.next())
            for node in self._round(last=self._lost):
                self.attempts += 1
                try:
                    connection = await self._connect(node, self._settings.connect_timeout)
                except AMQP_ERRORS as exc:
                    failed = True
                    self.last_error = f"{_safe(node)}: {describe(exc)}"
                    log.debug("reconnection attempt %d failed: %s", self.attempts, self.last_error)
                    continue
                if failed:
                    # The broker is back: if the channels fail on it now, retry soon, not after
                    # the long pause the outage had grown to.
                    self._backoff.reset()
                return connection
            self._remind(loop.time())

    def recovered(self) -> None:
        """The channels and consumer work again: end the outage, in the log too."""
        if self.down_since is None:
            return
        took = asyncio.get_running_loop().time() - self.down_since
        log.info(
            "RabbitMQ at %s is back after %.1fs and %d attempt(s); channels and consumer restored",
            self.safe_url,
            took,
            self.attempts,
        )
        self.down_since = None
        self._backoff.reset()

    def outage(self) -> str:
        """The current outage in one line, for readiness."""
        if self.down_since is None:
            return f"connecting to {self.places}"
        took = asyncio.get_running_loop().time() - self.down_since
        return (
            f"connection to RabbitMQ at {_safe(self._lost)} lost {took:.0f}s ago, reconnecting "
            f"to {self.places} ({self.attempts} attempt(s); last error: {self.last_error})"
        )

    def _round(self, last: URL | None = None) -> list[URL]:
        """The nodes in the order of the next round of attempts: shuffled, ``last`` last."""
        order = random.sample(self.nodes, len(self.nodes))
        if last is not None and len(order) > 1:
            order.remove(last)
            order.append(last)
        return order

    async def _connect(self, node: URL, within: float) -> AbstractConnection:
        self.node = node
        async with asyncio.timeout(within):
            return await aio_pika.connect(
                node,
                timeout=within,
                client_properties={"connection_name": self._settings.service_name},
            )

    async def _pause(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if RabbitMQ refused connections and now accepts one.

        The probe is a bare TCP connect every ``reconnect_interval`` seconds while the port
        refuses, which costs a down broker nothing. A port that accepts now but refused at the
        last probe means RabbitMQ just came back (perhaps while the last attempt was being
        refused): the pause ends at once. A port that accepted at the last probe too means a
        broker that is up but turns the service away: the pause is slept out, unprobed.
        """
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        was_open, self._port_was_open = self._port_was_open, await self._accepting()
        if self._port_was_open:
            if not was_open:
                log.debug("RabbitMQ at %s accepts connections again", self.safe_url)
                return
            await asyncio.sleep(max(until - loop.time(), 0))
            return
        while (left := until - loop.time()) > 0:
            await asyncio.sleep(min(self._settings.reconnect_interval, left))
            if await self._accepting():
                self._port_was_open = True
                log.debug("RabbitMQ at %s accepts connections again", self.safe_url)
                return

    async def _accepting(self) -> bool:
        """Whether any node accepts a TCP connection (probed one after another)."""
        for node in self.nodes:
            default_port = 5671 if node.scheme == "amqps" else 5672
            try:
                async with asyncio.timeout(min(self._settings.reconnect_interval, 1.0)):
                    _, writer = await asyncio.open_connection(
                        node.host or "localhost", node.port or default_port
                    )
            except OSError:
                continue
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return True
        return False

    def _remind(self, now: float) -> None:
        if self.down_since is None or now - self._reminded < self._settings.outage_reminder:
            return
        self._reminded = now
        log.warning(
            "%s is still unreachable after %.0fs and %d attempt(s); last error: %s",
            self.places,
            now - self.down_since,
            self.attempts,
            self.last_error,
        )


def _with_heartbeat(node: URL, heartbeat: int) -> URL:
    return node if "heartbeat" in node.query else node.update_query(heartbeat=heartbeat)


def _safe(node: URL) -> str:
    shown = node.with_query(None)
    return str(shown.with_password("***") if shown.password else shown)
