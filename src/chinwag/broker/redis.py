"""Redis broker: several processes share channels, expiring sets and values through Redis.

Two kinds of connection:

* a small pool for commands (publish, sets, values, ping), every command bounded by
  ``RedisTimings.op_timeout`` so nothing hangs while Redis is away;
* one dedicated pub/sub connection (a "link") read by exactly one reader task, which
  delivers messages to ``on_message`` in the order Redis sent them.

Invariants:

* ``_wanted`` is the truth about subscriptions. Every new link subscribes all of it,
  and a message on a channel that is no longer wanted is dropped, so ``unsubscribe``
  takes effect at once even while Redis still has messages in flight.
* Only the reader task reads from the link; writes to it (subscribe, unsubscribe, ping)
  go through one lock in ``_Link``, so acknowledgements arrive in the order
  their waiters were queued.
* When a link is lost the reader reconnects with capped exponential backoff, subscribes
  ``_wanted`` again and, once Redis has confirmed all of it, calls ``on_resync`` once
  per outage. Nothing is replayed: callers recover from the store.

Sharded pub/sub (SPUBLISH/SSUBSCRIBE) is used when the server is Redis 7 or newer,
plain PUBLISH/SUBSCRIBE otherwise (decided again on every new link). The expiring
sets and values are in ``redis_state.py``. Requires Redis >= 5.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from chinwag.broker.base import BrokerUnavailable, OnMessage, OnResync
from chinwag.broker.redis_state import DOWN, SET_ADD_BATCH, RedisExpiringState, RedisTimings

__all__ = ["SET_ADD_BATCH", "RedisBroker", "RedisTimings"]

log = logging.getLogger(__name__)

#: Sharded pub/sub exists from this Redis major version on.
SHARDED_SINCE_MAJOR = 7


class _Link:
    """One pub/sub connection and the subscription acknowledgements it still owes."""

    def __init__(self, conn: AbstractConnection, sharded: bool) -> None:
        self.conn = conn
        self.sharded = sharded
        self.closed = False
        self.opened_at = time.monotonic()
        self.ready = asyncio.Event()  # set once every resubscription is confirmed
        self.resubscribing = 0
        self._lock = asyncio.Lock()
        # Per channel, in command order: a caller's future, or None for a resubscription.
        self._acks: dict[bytes, deque[asyncio.Future[None] | None]] = {}

    async def subscribe(
        self, channels: Sequence[bytes], *, resubscribe: bool
    ) -> list[asyncio.Future[None]]:
        """Subscribe; return futures resolved by the acks (none for a resubscription,
        whose acks are counted in ``resubscribing`` instead)."""
        futures: list[asyncio.Future[None]] = []
        if not channels:
            return futures
        verb = "SSUBSCRIBE" if self.sharded else "SUBSCRIBE"
        async with self._writing():
            loop = asyncio.get_running_loop()
            for channel in channels:
                fut: asyncio.Future[None] | None = None
                if resubscribe:
                    self.resubscribing += 1
                else:
                    fut = loop.create_future()
                    futures.append(fut)
                self._acks.setdefault(channel, deque()).append(fut)
            await self._send([(verb, channel) for channel in channels])
        return futures

    async def unsubscribe(self, channel: bytes) -> None:
        async with self._writing():
            await self._send([("SUNSUBSCRIBE" if self.sharded else "UNSUBSCRIBE", channel)])

    async def ping(self) -> None:
        async with self._writing():
            await self._send([("PING",)])

    @contextlib.asynccontextmanager
    async def _writing(self) -> AsyncIterator[None]:
        async with self._lock:
            # Checked under the lock with no await before the write: a lost link is
            # never silently reconnected behind the reader's back.
            if self.closed or not self.conn.is_connected:
                raise RedisConnectionError("pub/sub link is down")
            yield

    async def _send(self, commands: list[tuple[str | bytes, ...]]) -> None:
        packed = self.conn.pack_commands(commands)
        await self.conn.send_packed_command(packed, check_health=False)

    def acked(self, channel: bytes) -> bool:
        """Record a subscribe ack; True when it was the last pending resubscription."""
        queue = self._acks.get(channel)
        if not queue:
            return False
        fut = queue.popleft()
        if not queue:
            del self._acks[channel]
        if fut is not None:
            if not fut.done():
                fut.set_result(None)
            return False
        self.resubscribing -= 1
        return self.resubscribing == 0

    async def close(self) -> None:
        """Disconnect and release every waiter (their wish stays in ``_wanted``)."""
        self.closed = True
        for queue in self._acks.values():
            for fut in queue:
                if fut is not None and not fut.done():
                    fut.set_result(None)
        self._acks.clear()
        with contextlib.suppress(*DOWN):
            await self.conn.disconnect(nowait=True)


class RedisBroker(RedisExpiringState):
    """The :class:`~chinwag.broker.base.Broker` over Redis, for several processes:
    pub/sub here, the expiring sets and values in ``RedisExpiringState``.

    ``node_id`` names this process's connections in ``CLIENT LIST``; ``key_prefix``
    goes in front of every channel and key, so several deployments (or tests) can
    share one Redis. Commands raise :class:`BrokerUnavailable` within about
    ``2 * timings.op_timeout`` when Redis is away; subscribe and unsubscribe never
    raise (they record the wish and the next link applies it).
    """

    def __init__(
        self,
        url: str,
        *,
        node_id: str,
        key_prefix: str = "chinwag:",
        timings: RedisTimings | None = None,
    ) -> None:
        self._timings = timings or RedisTimings()
        self._prefix = key_prefix
        self._prefix_b = key_prefix.encode()
        name = re.sub(r"[^!-~]", "_", f"chinwag-{node_id}")  # CLIENT SETNAME: no spaces
        op = self._timings.op_timeout
        self._pool: BlockingConnectionPool = BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=op,  # waiting for a free pooled connection is bounded too
            socket_timeout=op,
            socket_connect_timeout=op,
            socket_keepalive=True,
            client_name=name,
            protocol=2,  # the pub/sub reader parses RESP2 frames; one protocol for all
            # One immediate retry on a dropped connection (a pooled connection that
            # went stale across a Redis restart), none on timeouts: bounded time.
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        )
        if self._pool.connection_kwargs.get("protocol") != 2:
            raise ValueError("RedisBroker speaks RESP2: remove 'protocol' from the Redis URL")
        self._client = Redis(connection_pool=self._pool)
        self._register_scripts()

        self._wanted: set[str] = set()
        self._link: _Link | None = None
        self._reader: asyncio.Task[None] | None = None
        self._on_message: OnMessage | None = None
        self._on_resync: OnResync | None = None
        self._sharded: bool | None = None  # unknown until the first INFO
        self._resync_due = False
        self._closed = False

    # -- life cycle ------------------------------------------------------------

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        """Open the pub/sub link and start the reader.

        Raises :class:`BrokerUnavailable` if Redis cannot be reached now; after that
        the reader keeps the link up by itself."""
        if self._closed or self._reader is not None:
            raise RuntimeError("RedisBroker.start() called twice or after close()")
        self._on_message = on_message
        self._on_resync = on_resync
        try:
            link = await self._open_link()
        except DOWN as exc:
            raise BrokerUnavailable(f"cannot reach Redis: {exc}") from exc
        self._reader = asyncio.create_task(self._run(link), name="chinwag-redis-reader")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._timings.op_timeout):
                await link.ready.wait()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        link, self._link = self._link, None
        if link is not None:
            await link.close()
        self._wanted.clear()
        self._on_message = self._on_resync = None
        with contextlib.suppress(*DOWN):
            await self._client.aclose()
        with contextlib.suppress(*DOWN):
            await self._pool.aclose()

    # -- publish / subscribe ---------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        async with self._guard("publish"):
            if await self._is_sharded():
                await self._client.spublish(self._channel(channel), payload)
            else:
                await self._client.publish(self._channel(channel), payload)

    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel``.

        When this returns, Redis has confirmed the subscription, or the link is down
        and ``on_resync`` will be called once it is back and subscribed."""
        self._wanted.add(channel)
        link = self._link
        if link is None:
            return
        try:
            futures = await link.subscribe([self._channel(channel)], resubscribe=False)
        except DOWN:
            return  # the reader notices, reconnects and subscribes _wanted
        try:
            async with asyncio.timeout(self._timings.op_timeout):
                await asyncio.gather(*futures)
        except TimeoutError:
            # A silent link is caught by the reader's heartbeat, which then resyncs.
            log.warning("Redis did not confirm subscription to %r in time", channel)

    async def unsubscribe(self, channel: str) -> None:
        self._wanted.discard(channel)  # delivery stops now; Redis follows
        link = self._link
        if link is None:
            return
        with contextlib.suppress(*DOWN):
            await link.unsubscribe(self._channel(channel))

    async def healthy(self) -> bool:
        """PING answered within ``op_timeout`` and, once started, the pub/sub link is up."""
        if self._closed:
            return False
        if self._reader is not None:
            link = self._link
            if link is None or not link.ready.is_set():
                return False
        try:
            async with asyncio.timeout(self._timings.op_timeout):
                return bool(await self._client.ping())
        except Exception:
            return False

    # -- the reader --------------------------------------------------------------

    async def _open_link(self) -> _Link:
        # Same options as the pool's, but owned by the reader alone (redis-py leaves
        # make_connection and connect untyped).
        conn: AbstractConnection = self._pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await conn.connect()  # type: ignore[no-untyped-call]
            await conn.send_command("INFO", "server", check_health=False)
            info = await conn.read_response(timeout=self._timings.op_timeout)
            if info is None:
                raise TimeoutError("no answer to INFO")
            self._sharded = _major_version(info) >= SHARDED_SINCE_MAJOR
            link = _Link(conn, self._sharded)
            # No await between publishing the link and reading _wanted: a subscribe()
            # from now on goes to this link itself, and one before is in the snapshot.
            self._link = link
            channels = [self._channel(c) for c in sorted(self._wanted)]
            await link.subscribe(channels, resubscribe=True)
        except BaseException:
            if self._link is not None and self._link.conn is conn:
                self._link = None
            with contextlib.suppress(*DOWN):
                await conn.disconnect(nowait=True)
            raise
        if link.resubscribing == 0:
            self._link_ready(link)
        return link

    async def _run(self, link: _Link | None) -> None:
        """The reader task: pump the link; when it breaks, reconnect with capped backoff.

        Never ends on its own (only ``close()`` cancels it): every failure, expected
        or not, is logged and treated as a lost link."""
        delay = self._timings.backoff_min
        lost_at = time.monotonic()
        while True:
            if link is None:
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, self._timings.backoff_max)
                try:
                    link = await self._open_link()
                except DOWN as exc:
                    log.debug("Redis reconnect failed: %s", exc)
                    continue
                except Exception:
                    log.exception("unexpected error while reconnecting to Redis")
                    continue
                log.info("Redis pub/sub connected again after %.2fs", time.monotonic() - lost_at)
            try:
                await self._pump(link)  # returns only by raising
            except DOWN as exc:
                log.warning("Redis pub/sub connection lost (%s); reconnecting", exc)
            except Exception:
                log.exception("unexpected error on the Redis pub/sub link; reconnecting")
            finally:
                if self._link is link:
                    self._link = None
                await link.close()
            lost_at = time.monotonic()
            if lost_at - link.opened_at >= self._timings.backoff_max:
                delay = self._timings.backoff_min  # it had been up a while: start over
            self._resync_due = True
            link = None

    async def _pump(self, link: _Link) -> None:
        ping_sent = False
        while True:
            try:
                frame: Any = await link.conn.read_response(timeout=self._timings.heartbeat)
            except ResponseError as exc:  # e.g. a refused SUBSCRIBE; the link is fine
                log.error("Redis refused a pub/sub command: %s", exc)
                continue
            if frame is None:  # read timed out
                if ping_sent:
                    raise TimeoutError("Redis did not answer PING on the pub/sub link")
                await link.ping()
                ping_sent = True
                continue
            ping_sent = False
            if isinstance(frame, list) and len(frame) == 3:
                self._dispatch(link, frame[0], frame[1], frame[2])

    def _dispatch(self, link: _Link, kind: bytes, channel: bytes, data: Any) -> None:
        if kind in (b"smessage", b"message"):
            if not channel.startswith(self._prefix_b):
                return
            name = channel[len(self._prefix_b) :].decode("utf-8", "replace")
            if name in self._wanted and self._on_message is not None:
                try:
                    self._on_message(name, data)
                except Exception:
                    log.exception("on_message failed for channel %r", name)
        elif kind in (b"ssubscribe", b"subscribe") and link.acked(channel):
            self._link_ready(link)

    def _link_ready(self, link: _Link) -> None:
        link.ready.set()
        if self._resync_due and self._on_resync is not None:
            self._resync_due = False
            try:
                self._on_resync()
            except Exception:
                log.exception("on_resync failed")

    # -- helpers -------------------------------------------------------------------

    async def _is_sharded(self) -> bool:
        if self._sharded is None:  # publishing before start(): ask once
            info = await self._client.info("server")
            self._sharded = _major_version(info) >= SHARDED_SINCE_MAJOR
        return self._sharded


def _major_version(info: object) -> int:
    """Major version from ``INFO server`` (raw bytes, or the dict redis-py parses it to)."""
    if isinstance(info, dict):
        text = str(info.get("redis_version", info.get(b"redis_version", "0")))
    elif isinstance(info, bytes | str):
        raw = info.decode() if isinstance(info, bytes) else info
        found = re.search(r"redis_version:(\d+)", raw)
        text = found.group(1) if found else "0"
    else:
        text = "0"
    digits = re.match(r"\d+", text)
    return int(digits.group()) if digits else 0
