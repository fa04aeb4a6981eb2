"""The service on a 3-node RabbitMQ cluster, under the failures a cluster is for: the quorum
queue's leader killed, a rolling restart, the node of a replica stopped, and the majority lost.

Two replicas of the sample service run in this process, as competing consumers of one quorum
queue, while REST publishes go on; every accepted reading is counted by id. They start a
cluster of their own (``tests/rabbitmq.py``), so they run only when asked::

    uv run pytest -m cluster   # needs Debian's rabbitmq-server; about two minutes
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from uuid import UUID

import pytest
from aiohttp import web
from yarl import URL

from {{ cookiecutter.package }}.runtime.amqp import AmqpBroker
from {{ cookiecutter.package }}.runtime.broker import BROKER
from {{ cookiecutter.package }}.settings import Settings

from .conftest import Client, eventually, make_settings, readiness_is
from .rabbitmq import Node, RabbitMQStartError, ThrowawayCluster
from .sample import READINGS, sample_app

pytestmark = pytest.mark.cluster

PUBLISH_TIMEOUT = 2.0
MOVE_WITHIN = 5.0  # seconds for a replica to be ready on another node after losing its own


@pytest.fixture(scope="module")
def three_nodes(request: pytest.FixtureRequest) -> Iterator[ThrowawayCluster]:
    if "cluster" not in (request.config.option.markexpr or ""):
        pytest.skip("starts a 3-node RabbitMQ cluster: run `uv run pytest -m cluster`")
    cluster = ThrowawayCluster()
    try:
        cluster.start()
    except RabbitMQStartError as exc:
        pytest.skip(str(exc).splitlines()[0])
    yield cluster
    cluster.stop()


@pytest.fixture
async def cluster(three_nodes: ThrowawayCluster) -> AsyncIterator[ThrowawayCluster]:
    """The cluster, with every node it stopped started again after the test."""
    yield three_nodes
    for node in three_nodes.nodes:
        if not node.running:
            await asyncio.to_thread(node.start)


@pytest.fixture
def replicas(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], cluster: ThrowawayCluster
) -> Callable[[int], Awaitable[list[Client]]]:
    """Start ``count`` replicas of one service on the cluster; ready when returned."""

    async def start(count: int) -> list[Client]:
        settings = cluster_settings(cluster)
        clients = [await aiohttp_client(sample_app(settings.model_copy())) for _ in range(count)]
        for client in clients:
            await eventually(readiness_is(client, 200), within=10)
        return clients

    return start


def cluster_settings(cluster: ThrowawayCluster) -> Settings:
    return make_settings(
        amqp_url=cluster.url,
        publish_timeout=PUBLISH_TIMEOUT,
        connect_timeout=2.0,
        reconnect_interval=0.2,
        reconnect_max=1.0,
    )


def node_of(cluster: ThrowawayCluster, client: Client) -> Node:
    broker = client.app[BROKER]
    assert isinstance(broker, AmqpBroker)
    return cluster.node_at(URL(broker.safe_url).port or 5672)


@dataclass
class Traffic:
    """REST publishes to the replicas until stopped: what was accepted, and what was refused."""

    clients: list[Client]
    accepted: set[UUID] = field(default_factory=set)
    refused: list[str] = field(default_factory=list)
    slowest: float = 0.0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    @contextlib.asynccontextmanager
    async def running(self, posters: int = 6) -> AsyncIterator[None]:
        tasks = [
            asyncio.create_task(self._post(self.clients[i % len(self.clients)]))
            for i in range(posters)
        ]
        try:
            yield
        finally:
            self._stop.set()
            await asyncio.gather(*tasks)

    async def _post(self, client: Client) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            began = loop.time()
            response = await client.post("/test/readings", json={"key": "c", "value": 1})
            self.slowest = max(self.slowest, loop.time() - began)
            body = await response.json()
            if response.status == 202:
                self.accepted.add(UUID(body["id"]))
            else:
                assert response.status == 503, body
                self.refused.append(body["detail"])
            await asyncio.sleep(0.01)

    async def all_consumed(self) -> bool:
        seen: set[UUID] = set()
        for client in self.clients:
            seen |= client.app[READINGS].seen
        return self.accepted <= seen


async def test_leader_killed_mid_stream_loses_no_accepted_reading(
    cluster: ThrowawayCluster, replicas: Callable[[int], Awaitable[list[Client]]]
) -> None:
    clients = await replicas(2)
    queue = clients[0].app[BROKER]
    assert isinstance(queue, AmqpBroker)
    leader = await asyncio.to_thread(cluster.leader, queue.topology.names.service)
    traffic = Traffic(clients)
    async with traffic.running():
        await asyncio.sleep(1.5)
        before = len(traffic.accepted)
        await asyncio.to_thread(leader.kill)
        await asyncio.sleep(6.0)
    assert before > 0
    assert len(traffic.accepted) > before  # publishes went on after the failover
    assert traffic.slowest < PUBLISH_TIMEOUT + 1.0  # a 503 within the publish timeout, or a 202
    await eventually(traffic.all_consumed, within=30)
    for client in clients:
        await eventually(readiness_is(client, 200), within=MOVE_WITHIN)
        assert node_of(cluster, client) is not leader


async def test_rolling_restart_loses_nothing_and_a_replica_dips_only_with_its_node(
    cluster: ThrowawayCluster, replicas: Callable[[int], Awaitable[list[Client]]]
) -> None:
    clients = await replicas(2)
    loop = asyncio.get_running_loop()
    down: dict[str, tuple[float, float]] = {}  # node: from when to when it was down
    dips: list[tuple[int, float, str, str]] = []  # replica, when, its node before, why
    sampling = asyncio.Event()

    async def watch(replica: int, client: Client) -> None:
        node = node_of(cluster, client).name
        while not sampling.is_set():
            response = await client.get("/health/ready")
            if response.status == 200:
                node = node_of(cluster, client).name
            else:
                why = str((await response.json())["reasons"])
                dips.append((replica, loop.time(), node, why))
            await asyncio.sleep(0.05)

    watchers = [asyncio.create_task(watch(*replica)) for replica in enumerate(clients)]
    traffic = Traffic(clients)
    async with traffic.running(posters=4):
        for node in cluster.nodes:
            began = loop.time()
            await asyncio.to_thread(node.stop)
            await asyncio.to_thread(node.start)
            down[node.name] = (began, loop.time())
            await asyncio.sleep(1.0)
    sampling.set()
    await asyncio.gather(*watchers)

    assert traffic.accepted
    assert traffic.slowest < PUBLISH_TIMEOUT + 1.0
    await eventually(traffic.all_consumed, within=30)
    for _, when, where, why in dips:
        stopped, started = down[where]
        assert stopped <= when <= started + 0.5, (where, why, when - stopped, started - stopped)
    assert {replica for replica, *_ in dips} == {0, 1}  # each lost its node once at least


async def test_a_replica_whose_node_stops_is_ready_on_another_within_the_bound(
    cluster: ThrowawayCluster, replicas: Callable[[int], Awaitable[list[Client]]]
) -> None:
    [client] = await replicas(1)
    node = node_of(cluster, client)
    loop = asyncio.get_running_loop()
    began = loop.time()
    stopping = asyncio.create_task(asyncio.to_thread(node.stop))

    async def moved() -> bool:
        ready = (await client.get("/health/ready")).status == 200
        return ready and node_of(cluster, client) is not node

    await eventually(moved, within=MOVE_WITHIN)
    took = loop.time() - began
    await stopping
    report = await (await client.get("/health/ready")).json()
    assert f":{node_of(cluster, client).port}/" in report["broker"]["detail"]  # names its node
    response = await client.post("/test/readings", json={"key": "moved", "value": 1})
    assert response.status == 202
    await eventually(Traffic([client], accepted={UUID((await response.json())["id"])}).all_consumed)
    assert took < MOVE_WITHIN


async def test_a_cluster_without_its_majority_answers_503_in_time_and_readiness_says_why(
    cluster: ThrowawayCluster, replicas: Callable[[int], Awaitable[list[Client]]]
) -> None:
    [client] = await replicas(1)
    own = node_of(cluster, client)
    others = [node for node in cluster.nodes if node is not own]
    for node in others:
        await asyncio.to_thread(node.stop)
    loop = asyncio.get_running_loop()
    for _ in range(3):  # one publish timeout of failures before readiness calls it an outage
        began = loop.time()
        response = await client.post("/test/readings", json={"key": "lost", "value": 1})
        assert response.status == 503
        assert loop.time() - began < PUBLISH_TIMEOUT + 0.5
        assert "did not confirm" in (await response.json())["detail"]
    response = await client.get("/health/ready")
    assert response.status == 503
    [reason] = (await response.json())["reasons"]
    assert "did not confirm" in reason
    assert "without a majority" in reason
    assert "none confirmed for" in reason

    for node in others:
        await asyncio.to_thread(node.start)

    async def accepted() -> bool:
        response = await client.post("/test/readings", json={"key": "back", "value": 1})
        return response.status == 202

    await eventually(accepted, within=20)
    await eventually(readiness_is(client, 200))
