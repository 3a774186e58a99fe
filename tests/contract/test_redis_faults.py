"""RedisBroker against a real redis-server that these tests kill, freeze and restart.

Each test starts its own ``redis-server`` on a free port (no persistence) and stops it
by PID. Outside CI a missing ``redis-server`` binary skips them; in CI (``CI=true``)
it fails them. Every wait is bounded by a deadline.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pytest
from redis.asyncio import Redis

from chinwag.broker.base import BrokerUnavailable
from chinwag.broker.redis import RedisBroker, RedisTimings

IN_CI = os.environ.get("CI", "").lower() in {"true", "1"}
TIMINGS = RedisTimings(op_timeout=0.5, backoff_min=0.02, backoff_max=0.25, heartbeat=0.5)
#: Every failing operation must give up within this (2 * op_timeout plus slack).
FAIL_FAST = 2 * TIMINGS.op_timeout + 0.5
WAIT = 10.0

T = TypeVar("T")


@dataclass
class Inbox:
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


async def eventually(check: Callable[[], Awaitable[bool]], within: float = WAIT) -> float:
    """Poll ``check`` until it holds; return how long that took; fail after ``within``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await check():
        if loop.time() - start > within:
            pytest.fail(f"condition not met within {within}s")
        await asyncio.sleep(0.01)
    return loop.time() - start


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A throw-away redis-server on one port; restartable on the same port."""

    def __init__(self, binary: str, port: int, log_path: Path) -> None:
        self.binary = binary
        self.port = port
        self.url = f"redis://127.0.0.1:{port}"
        self.log_path = log_path
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        assert self.proc is None, "already running"
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                self.binary,
                *("--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no"),
                stdout=log,
                stderr=log,
            )
        await eventually(self.answers_ping, within=WAIT)

    async def kill(self) -> None:
        """SIGKILL by PID: no goodbye to clients, like a crash or a lost machine."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            os.kill(proc.pid, signal.SIGCONT)  # in case it was frozen
            os.kill(proc.pid, signal.SIGKILL)
            async with asyncio.timeout(WAIT):
                await proc.wait()

    def freeze(self) -> None:
        """SIGSTOP: sockets stay open but nothing answers (a hung or partitioned server)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    async def answers_ping(self) -> bool:
        try:
            async with asyncio.timeout(0.5):
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    writer.write(b"PING\r\n")
                    await writer.drain()
                    return await reader.readline() == b"+PONG\r\n"
                finally:
                    writer.close()
        except (OSError, TimeoutError):
            return False


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        if IN_CI:
            pytest.fail("redis-server is not installed; CI must run the Redis fault tests")
        pytest.skip("redis-server is not installed (apt install redis-server)")
    srv = RedisServer(binary, free_port(), tmp_path / "redis.log")
    await srv.start()
    yield srv
    await srv.kill()


@pytest.fixture
async def make_broker(server: RedisServer) -> AsyncIterator[Callable[[str], RedisBroker]]:
    brokers: list[RedisBroker] = []

    def make(node_id: str) -> RedisBroker:
        broker = RedisBroker(server.url, node_id=node_id, key_prefix="t:", timings=TIMINGS)
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        await broker.close()


async def timed(op: Awaitable[T]) -> tuple[T | BaseException, float]:
    """Run ``op``; return its result (or the exception it raised) and its duration."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        result: T | BaseException = await op
    except Exception as exc:
        result = exc
    return result, loop.time() - start


async def test_broker_reconnects_resubscribes_and_resyncs_once_per_restart(
    server: RedisServer, make_broker: Callable[[str], RedisBroker]
) -> None:
    inbox = Inbox()
    node = make_broker("n1")
    other = make_broker("n2")  # publishes only: its pool must recover on its own too
    await node.start(inbox.on_message, inbox.on_resync)
    await node.subscribe("room:1")
    await other.publish("room:1", b"before")
    await inbox.wait_for(lambda: inbox.payloads("room:1") == [b"before"])

    async def outage(n: int) -> None:
        await server.kill()  # mid-subscription
        await eventually(lambda: _not(node.healthy()), within=FAIL_FAST)
        result, took = await timed(node.publish("room:1", b"lost"))
        assert isinstance(result, BrokerUnavailable)
        assert took < FAIL_FAST
        _, took = await timed(node.subscribe(f"room:down-{n}"))  # recorded, not sent
        assert took < FAIL_FAST

        await server.start()
        await inbox.wait_for(lambda: inbox.resyncs == n)
        await eventually(node.healthy, within=FAIL_FAST)

        await other.publish("room:1", f"after-{n}".encode())
        await other.publish(f"room:down-{n}", b"new-room")
        await inbox.wait_for(lambda: inbox.payloads(f"room:down-{n}") == [b"new-room"])
        assert inbox.payloads("room:1")[-1] == f"after-{n}".encode()
        assert inbox.resyncs == n  # exactly once per outage

    await outage(1)
    await outage(2)
    assert inbox.payloads("room:1") == [b"before", b"after-1", b"after-2"]


async def test_reconnect_follows_a_restart_within_the_backoff_cap(
    server: RedisServer, make_broker: Callable[[str], RedisBroker]
) -> None:
    inbox = Inbox()
    node = make_broker("n1")
    await node.start(inbox.on_message, inbox.on_resync)
    await node.subscribe("room:1")

    await server.kill()
    # Stay down long enough for the backoff to reach its cap.
    await asyncio.sleep(4 * TIMINGS.backoff_max)
    await server.start()
    loop = asyncio.get_running_loop()
    restarted = loop.time()
    await inbox.wait_for(lambda: inbox.resyncs == 1)
    assert loop.time() - restarted < TIMINGS.backoff_max + TIMINGS.op_timeout


async def test_operations_fail_fast_while_redis_is_down(
    server: RedisServer, make_broker: Callable[[str], RedisBroker]
) -> None:
    inbox = Inbox()
    node = make_broker("n1")
    await node.start(inbox.on_message, inbox.on_resync)
    await node.subscribe("room:1")
    await server.kill()

    failing: list[Callable[[], Awaitable[object]]] = [
        lambda: node.publish("room:1", b"x"),
        lambda: node.set_add("presence", "alice", ttl=10),
        lambda: node.set_members("presence"),
        lambda: node.set_remove("presence", "alice"),
        lambda: node.put("stats", b"x", ttl=10),
        lambda: node.get_many(["stats"]),
    ]
    for op in failing:
        result, took = await timed(op())
        assert isinstance(result, BrokerUnavailable), result
        assert took < FAIL_FAST

    recorded: list[Callable[[], Awaitable[None]]] = [
        lambda: node.subscribe("room:2"),
        lambda: node.unsubscribe("room:1"),
    ]
    for op in recorded:
        result, took = await timed(op())
        assert result is None
        assert took < FAIL_FAST
    assert await node.healthy() is False


async def test_unsubscribe_while_down_is_applied_on_reconnect(
    server: RedisServer, make_broker: Callable[[str], RedisBroker]
) -> None:
    inbox = Inbox()
    node = make_broker("n1")
    await node.start(inbox.on_message, inbox.on_resync)
    await node.subscribe("room:gone")
    await node.subscribe("room:kept")

    await server.kill()
    await node.unsubscribe("room:gone")
    await server.start()
    await inbox.wait_for(lambda: inbox.resyncs == 1)

    # Redis itself no longer routes the channel to us (not just a local filter).
    client = Redis.from_url(server.url)
    try:
        counts = await client.pubsub_shardnumsub("t:room:gone")
    finally:
        await client.aclose()
    assert counts == [(b"t:room:gone", 0)]

    await node.publish("room:gone", b"no")
    await node.publish("room:kept", b"marker")
    await inbox.wait_for(lambda: inbox.payloads("room:kept") == [b"marker"])
    assert inbox.payloads("room:gone") == []


async def test_frozen_redis_is_detected_by_heartbeat_and_recovered(
    server: RedisServer, make_broker: Callable[[str], RedisBroker]
) -> None:
    inbox = Inbox()
    node = make_broker("n1")
    await node.start(inbox.on_message, inbox.on_resync)
    await node.subscribe("room:1")

    server.freeze()  # connections stay open, nothing answers: no error to notice
    try:
        await eventually(lambda: _not(node.healthy()), within=FAIL_FAST)
        result, took = await timed(node.publish("room:1", b"lost"))
        assert isinstance(result, BrokerUnavailable)
        assert took < FAIL_FAST
    finally:
        server.thaw()

    # The reader declared the silent link dead and reconnected by itself.
    await inbox.wait_for(lambda: inbox.resyncs == 1)
    await node.publish("room:1", b"after")
    await inbox.wait_for(lambda: inbox.payloads("room:1")[-1:] == [b"after"])


async def test_start_fails_fast_when_redis_is_unreachable() -> None:
    broker = RedisBroker(
        f"redis://127.0.0.1:{free_port()}", node_id="n1", key_prefix="t:", timings=TIMINGS
    )
    inbox = Inbox()
    result, took = await timed(broker.start(inbox.on_message, inbox.on_resync))
    assert isinstance(result, BrokerUnavailable)
    assert took < FAIL_FAST
    assert await broker.healthy() is False
    await broker.close()


async def _not(check: Awaitable[bool]) -> bool:
    return not await check
