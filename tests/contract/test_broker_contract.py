"""One contract for every Broker implementation.

Each test runs against:
* ``memory``: the in-process broker;
* ``memory-twins``: its two halves, ``MemoryPubSub`` and ``MemoryState``, as separate
  objects (each interface's in-memory twin on its own);
* ``redis``: RedisBroker against the machine's Redis (sharded pub/sub on Redis >= 7);
* ``redis-plain``: the same, forced onto plain PUBLISH/SUBSCRIBE (the Redis < 7 path);
* ``redis-cluster``: RedisClusterBroker against a 3-master Redis Cluster the suite
  starts from ``redis-server`` (one per session, ``tests/redis_cluster_fixture.py``).

Every Redis test uses its own key prefix, so tests never see each other's channels or
keys. Outside CI an unreachable Redis skips the Redis variants with the reason; in CI
(``CI=true``) it fails them.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from chinwag.broker import redis as redis_broker
from chinwag.broker.base import Broker
from chinwag.broker.memory import MemoryBroker, MemoryPubSub, MemoryState
from chinwag.broker.redis import RedisBroker
from chinwag.broker.redis_cluster import RedisClusterBroker

REDIS_URL = os.environ.get("CHINWAG_TEST_REDIS_URL", "redis://127.0.0.1:6379")
IN_CI = os.environ.get("CI", "").lower() in {"true", "1"}
WAIT = 5.0  # upper bound for anything that should happen "soon"


@dataclass
class Inbox:
    """Collects what a broker delivers; tests wait on it with a deadline."""

    messages: list[tuple[str, bytes]] = field(default_factory=list)
    resyncs: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, channel: str, payload: bytes) -> None:
        self.messages.append((channel, payload))
        self._changed.set()

    def on_resync(self) -> None:
        self.resyncs += 1
        self._changed.set()

    def payloads(self, channel: str) -> list[bytes]:
        return [p for c, p in self.messages if c == channel]

    async def wait_for(self, predicate: Callable[[], bool], within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


@dataclass
class Node:
    broker: Broker
    inbox: Inbox


NodeFactory = Callable[[], Awaitable[Node]]


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> None:
    """Poll ``check`` until it holds; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"condition not met within {within}s")
        await asyncio.sleep(0.02)


async def redis_problem(url: str) -> str | None:
    """Why Redis at ``url`` can't be used, or None when it answers PING."""
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        await client.ping()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        await client.aclose()
    return None


async def delete_prefixed(url: str, prefix: str) -> None:
    client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


class Twins(MemoryPubSub):
    """A Broker made of the two in-memory twins: pub/sub here, state delegated."""

    def __init__(self) -> None:
        super().__init__()
        state = MemoryState()
        self.set_add, self.set_remove = state.set_add, state.set_remove
        self.set_members, self.set_count = state.set_members, state.set_count
        self.set_owners = state.set_owners
        self.set_add_many, self.put, self.get_many = (state.set_add_many, state.put, state.get_many)


@pytest.fixture(params=["memory", "memory-twins", "redis", "redis-plain", "redis-cluster"])
def impl(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def new_node(
    impl: str, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[NodeFactory]:
    """Start brokers of ``impl`` (as many as the test asks for) sharing one namespace."""
    cluster_url = None
    if impl == "redis-cluster":
        cluster_url = request.getfixturevalue("redis_cluster").url
    elif not impl.startswith("memory"):
        problem = await redis_problem(REDIS_URL)
        if problem is not None:
            message = f"Redis at {REDIS_URL} is unreachable ({problem})"
            if IN_CI:
                pytest.fail(message + "; CI must run the Redis contract")
            pytest.skip(message + "; set CHINWAG_TEST_REDIS_URL or start redis-server")
        if impl == "redis-plain":
            monkeypatch.setattr(redis_broker, "SHARDED_SINCE_MAJOR", 10**6)
    prefix = f"chinwag-test:{uuid.uuid4().hex}:"
    nodes: list[Node] = []

    async def factory() -> Node:
        broker: Broker
        if impl == "memory":
            broker = MemoryBroker()
        elif impl == "memory-twins":
            broker = Twins()
        elif cluster_url is not None:
            broker = RedisClusterBroker(
                cluster_url, node_id=f"test-{len(nodes)}", key_prefix=prefix
            )
        else:
            broker = RedisBroker(REDIS_URL, node_id=f"test-{len(nodes)}", key_prefix=prefix)
        node = Node(broker, Inbox())
        await broker.start(node.inbox.on_message, node.inbox.on_resync)
        nodes.append(node)
        return node

    yield factory
    for node in nodes:
        await node.broker.close()
    if impl in ("redis", "redis-plain"):
        await delete_prefixed(REDIS_URL, prefix)


@pytest.fixture
async def node(new_node: NodeFactory) -> Node:
    return await new_node()


# -- publish / subscribe --------------------------------------------------------------


async def test_published_message_reaches_subscriber_byte_for_byte(node: Node) -> None:
    payload = bytes(range(256)) + "ünïcødé".encode()
    await node.broker.subscribe("room:a")
    await node.broker.publish("room:not-subscribed", b"nobody listens")
    await node.broker.publish("room:a", payload)

    await node.inbox.wait_for(lambda: len(node.inbox.messages) >= 1)
    assert node.inbox.messages == [("room:a", payload)]


async def test_order_is_kept_for_1000_messages(node: Node) -> None:
    await node.broker.subscribe("room:order")
    sent = [f"m{i}".encode() for i in range(1000)]
    for payload in sent:
        await node.broker.publish("room:order", payload)

    await node.inbox.wait_for(lambda: len(node.inbox.messages) >= len(sent), within=15)
    assert node.inbox.payloads("room:order") == sent


async def test_unsubscribe_stops_delivery(node: Node) -> None:
    await node.broker.subscribe("room:a")
    await node.broker.subscribe("room:b")
    await node.broker.publish("room:a", b"1")
    await node.inbox.wait_for(lambda: node.inbox.payloads("room:a") == [b"1"])

    await node.broker.unsubscribe("room:a")
    await node.broker.unsubscribe("room:a")  # idempotent
    await node.broker.publish("room:a", b"2")
    await node.broker.publish("room:b", b"marker")

    # Delivery is ordered, so once the marker is here "2" would have arrived too.
    await node.inbox.wait_for(lambda: node.inbox.payloads("room:b") == [b"marker"])
    assert node.inbox.payloads("room:a") == [b"1"]


async def test_subscribe_twice_delivers_once(node: Node) -> None:
    await node.broker.subscribe("room:a")
    await node.broker.subscribe("room:a")
    await node.broker.publish("room:a", b"once")
    await node.broker.publish("room:a", b"marker")

    await node.inbox.wait_for(lambda: b"marker" in node.inbox.payloads("room:a"))
    assert node.inbox.payloads("room:a") == [b"once", b"marker"]


async def test_resubscribe_after_unsubscribe_delivers_again(node: Node) -> None:
    await node.broker.subscribe("room:a")
    await node.broker.unsubscribe("room:a")
    await node.broker.subscribe("room:a")
    await node.broker.publish("room:a", b"back")

    await node.inbox.wait_for(lambda: node.inbox.payloads("room:a") == [b"back"])


async def test_two_nodes_see_each_others_publishes(impl: str, new_node: NodeFactory) -> None:
    if impl.startswith("memory"):
        pytest.skip("memory broker is per process by design: two instances share nothing")
    one, two = await new_node(), await new_node()
    for node in (one, two):
        await node.broker.subscribe("room:x")

    await one.broker.publish("room:x", b"from-1")
    await two.broker.publish("room:x", b"from-2")

    await one.inbox.wait_for(lambda: len(one.inbox.messages) >= 2)
    await two.inbox.wait_for(lambda: len(two.inbox.messages) >= 2)
    for node in (one, two):
        assert node.inbox.payloads("room:x") == [b"from-1", b"from-2"]
        assert node.inbox.resyncs == 0


# -- expiring sets --------------------------------------------------------------------


async def test_expiring_set_add_members_remove(node: Node) -> None:
    broker = node.broker
    assert await broker.set_members("presence:room:a") == []

    await broker.set_add("presence:room:a", "alice@n1", ttl=30)
    await broker.set_add("presence:room:a", "bob@n2", ttl=30)
    await broker.set_add("presence:room:a", "alice@n1", ttl=30)  # refresh, not a duplicate
    assert sorted(await broker.set_members("presence:room:a")) == ["alice@n1", "bob@n2"]

    await broker.set_remove("presence:room:a", "alice@n1")
    await broker.set_remove("presence:room:a", "nobody")  # no error
    assert await broker.set_members("presence:room:a") == ["bob@n2"]

    await broker.set_remove("presence:room:a", "bob@n2")
    assert await broker.set_members("presence:room:a") == []


async def test_set_owners_are_the_distinct_parts_before_the_last_separator(node: Node) -> None:
    broker = node.broker
    assert await broker.set_owners("presence:room:o", "/") == []
    for member in ("alice/c1", "alice/c2", "bob/c3", "a/b/c4", "plain"):
        await broker.set_add("presence:room:o", member, ttl=30)
    owners = await broker.set_owners("presence:room:o", "/")
    assert sorted(owners) == ["a/b", "alice", "bob", "plain"]
    await broker.set_remove("presence:room:o", "bob/c3")
    assert sorted(await broker.set_owners("presence:room:o", "/")) == ["a/b", "alice", "plain"]


async def test_set_members_vanish_after_their_ttl(node: Node) -> None:
    broker = node.broker
    # The long-lived member goes in first: a later short TTL must not cut it short.
    await broker.set_add("presence", "long", ttl=30)
    await broker.set_add("presence", "short", ttl=0.3)
    await broker.set_add("presence", "refreshed", ttl=0.3)
    await broker.set_add("presence", "refreshed", ttl=30)
    assert sorted(await broker.set_members("presence")) == ["long", "refreshed", "short"]

    async def short_is_gone() -> bool:
        return "short" not in await broker.set_members("presence")

    await eventually(short_is_gone, within=3)
    assert sorted(await broker.set_members("presence")) == ["long", "refreshed"]
    assert sorted(await broker.set_owners("presence", "/")) == ["long", "refreshed"]


async def test_a_set_whose_members_all_expired_is_empty(node: Node) -> None:
    await node.broker.set_add("typing", "alice", ttl=0.2)

    async def empty() -> bool:
        return await node.broker.set_members("typing") == []

    await eventually(empty, within=3)


async def test_set_count_counts_live_members_only(node: Node) -> None:
    broker = node.broker
    assert await broker.set_count("conns:alice") == 0
    await broker.set_add("conns:alice", "c1", ttl=30)
    await broker.set_add("conns:alice", "c2", ttl=0.2)
    assert await broker.set_count("conns:alice") == 2

    async def one_left() -> bool:
        return await broker.set_count("conns:alice") == 1

    await eventually(one_left, within=3)


async def test_set_add_many_adds_and_refreshes_across_keys_and_batches(node: Node) -> None:
    broker = node.broker
    await broker.set_add("online", "alice/c1", ttl=0.3)  # refreshed below, must survive
    many = [("online", f"u{i}/c{i}") for i in range(redis_broker.SET_ADD_BATCH + 20)]
    await broker.set_add_many([("online", "alice/c1"), ("conns:alice", "c1"), *many], ttl=30)
    await broker.set_add_many([], ttl=30)  # nothing to do, no error
    assert await broker.set_members("conns:alice") == ["c1"]
    await asyncio.sleep(0.5)
    assert await broker.set_count("online") == len(many) + 1
    assert "alice/c1" in await broker.set_members("online")


# -- expiring values ------------------------------------------------------------------


async def test_put_get_many_with_expiry(node: Node) -> None:
    broker = node.broker
    assert await broker.get_many([]) == []

    await broker.put("stats:n1", b"\x00one", ttl=30)
    await broker.put("stats:n2", b"two", ttl=0.3)
    assert await broker.get_many(["stats:n1", "stats:n2", "stats:missing"]) == [
        b"\x00one",
        b"two",
        None,
    ]

    async def n2_expired() -> bool:
        return (await broker.get_many(["stats:n2"])) == [None]

    await eventually(n2_expired, within=3)
    assert await broker.get_many(["stats:n1"]) == [b"\x00one"]

    await broker.put("stats:n1", b"newer", ttl=30)  # overwrite
    assert await broker.get_many(["stats:n1"]) == [b"newer"]


async def test_sets_and_values_do_not_share_keys(node: Node) -> None:
    await node.broker.put("k", b"value", ttl=30)
    await node.broker.set_add("k", "member", ttl=30)
    assert await node.broker.get_many(["k"]) == [b"value"]
    assert await node.broker.set_members("k") == ["member"]


# -- health and life cycle ------------------------------------------------------------


async def test_healthy_is_true_when_connected(node: Node) -> None:
    assert await node.broker.healthy() is True


async def test_close_is_idempotent_and_stops_delivery(node: Node) -> None:
    await node.broker.subscribe("room:a")
    await node.broker.close()
    await node.broker.close()
    assert node.inbox.messages == []
