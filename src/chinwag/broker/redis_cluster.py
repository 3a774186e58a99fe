"""Redis Cluster broker: ``BROKER_URL=redis+cluster://host:port[,host:port...]``.

Commands go through redis-py's cluster client (``redis.asyncio.cluster.RedisCluster``),
which routes every key to the master owning its slot and follows MOVED/ASK:

* publishing is ``SPUBLISH`` (sharded pub/sub), routed by the channel's slot, so a
  message only crosses the shard owning its channel, never the whole cluster bus;
* the expiring sets and values are the Redis broker's (``RedisExpiringState``): each
  set is one key handled by one single-key script, so no hash tags are needed and
  rooms spread over every shard; ``get_many`` reads values with ``mget_nonatomic``
  (one MGET per slot, the values are independent snapshots).

Subscriptions are sharded too (``SSUBSCRIBE`` on the master owning the channel's
slot). redis-py's async cluster client has a ``ClusterPubSub`` with ``ssubscribe``,
but it is a pull API with no signal that a node's connection was lost and came back;
the broker contract needs exactly that (``on_resync``), plus a heartbeat that catches a
silent peer and bounded waits. So each master gets one per-node ``RedisBroker`` used
for its pub/sub link only: the same reader, reconnect with backoff, heartbeat and
resubscription as with a single Redis, and every channel is subscribed on the node
owning its slot.

Limit: the slot-to-master map is read when the broker starts (and again when a node
is first needed). A resharding or failover while running is followed by commands
(redis-py retries them on the new owner) but not by subscriptions: restart the
processes after changing the cluster's layout.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster

from chinwag.broker.base import BrokerUnavailable, OnMessage, OnResync
from chinwag.broker.redis import RedisBroker, RedisTimings
from chinwag.broker.redis_state import DOWN, RedisExpiringState

__all__ = ["SCHEME", "RedisClusterBroker", "parse_cluster_url"]

SCHEME = "redis+cluster://"
#: Set updates of one presence refresh in flight at once (see ``_set_add_calls``).
CONCURRENT_SET_ADDS = 32


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """``redis+cluster://[user:password@]host:port[,host:port...]`` → seeds, user, password.

    Raises ValueError naming the problem."""
    if not url.startswith(SCHEME):
        raise ValueError(f"must start with {SCHEME}")
    rest = url[len(SCHEME) :].split("/", 1)[0].split("?", 1)[0]
    user = password = None
    if "@" in rest:
        auth, rest = rest.rsplit("@", 1)
        user_part, _, pass_part = auth.partition(":")
        user, password = unquote(user_part) or None, unquote(pass_part) or None
    seeds: list[tuple[str, int]] = []
    for item in rest.split(","):
        parts = urlsplit(f"//{item.strip()}")
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None:
            raise ValueError(f"{item!r} is not host:port (form: {SCHEME}host:port[,host:port...])")
        seeds.append((parts.hostname, port))
    return seeds, user, password


class RedisClusterBroker(RedisExpiringState):
    """The :class:`~chinwag.broker.base.Broker` over a Redis Cluster (Redis >= 7).

    Same promises as :class:`~chinwag.broker.redis.RedisBroker`: commands raise
    :class:`BrokerUnavailable` within about ``2 * timings.op_timeout``; subscribe and
    unsubscribe never raise."""

    def __init__(
        self,
        url: str,
        *,
        node_id: str,
        key_prefix: str = "chinwag:",
        timings: RedisTimings | None = None,
    ) -> None:
        seeds, self._user, self._password = parse_cluster_url(url)
        self._timings = timings or RedisTimings()
        self._prefix = key_prefix
        self._node_id = node_id
        op = self._timings.op_timeout
        self._cluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in seeds],
            username=self._user,
            password=self._password,
            socket_timeout=op,
            socket_connect_timeout=op,
            socket_keepalive=True,
            protocol=2,
        )
        self._client = self._cluster
        self._register_scripts()
        self._links: dict[str, RedisBroker] = {}  # master "host:port" → its pub/sub link
        self._routes: dict[str, RedisBroker] = {}  # subscribed channel → its link
        self._on_message: OnMessage | None = None
        self._on_resync: OnResync | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    # -- life cycle ------------------------------------------------------------

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        """Read the cluster's layout and open one pub/sub link per master.

        Raises :class:`BrokerUnavailable` if the cluster cannot be reached now."""
        if self._closed or self._on_message is not None:
            raise RuntimeError("RedisClusterBroker.start() called twice or after close()")
        self._on_message, self._on_resync = on_message, on_resync
        async with self._guard("start"):
            await self._cluster.initialize()
        for node in self._cluster.get_primaries():
            await self._link_for(node.host, int(node.port))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        links, self._links = list(self._links.values()), {}
        self._routes.clear()
        await asyncio.gather(*(link.close() for link in links), return_exceptions=True)
        with contextlib.suppress(*DOWN):
            await self._client.aclose()

    # -- publish / subscribe ---------------------------------------------------

    async def publish(self, channel: str, payload: bytes) -> None:
        async with self._guard("publish"):
            await self._client.spublish(self._channel(channel), payload)

    async def subscribe(self, channel: str) -> None:
        if channel in self._routes or self._closed:
            return
        try:
            async with self._guard("subscribe"):
                node = self._cluster.get_node_from_key(self._prefix + channel)
                if node is None:
                    raise BrokerUnavailable(f"subscribe: no master owns {channel!r}'s slot")
                link = await self._link_for(node.host, int(node.port))
        except BrokerUnavailable:
            return  # nothing to subscribe on yet; the caller resyncs from the store
        self._routes[channel] = link
        await link.subscribe(channel)

    async def unsubscribe(self, channel: str) -> None:
        link = self._routes.pop(channel, None)
        if link is not None:
            await link.unsubscribe(channel)

    async def healthy(self) -> bool:
        """Every master's pub/sub link is up and the cluster answers PING."""
        if self._closed or not self._links:
            return False
        checks = [link.healthy() for link in self._links.values()]
        return all(await asyncio.gather(*checks))

    # -- expiring values across slots ---------------------------------------------

    async def _mget(self, keys: list[str]) -> list[object]:
        # one MGET per slot: the values are independent snapshots
        return list(await self._cluster.mget_nonatomic(keys))

    async def _set_add_calls(self, calls: list[tuple[str, list[Any]]]) -> None:
        # A cluster pipeline runs no scripts: the sets (one slot each) are updated a
        # few at a time instead (bounded, not to exhaust a node's connection pool),
        # each call going straight to its slot's master.
        for start in range(0, len(calls), CONCURRENT_SET_ADDS):
            await asyncio.gather(
                *(
                    self._set_add(keys=[key], args=args)
                    for key, args in calls[start : start + CONCURRENT_SET_ADDS]
                )
            )

    # -- helpers -------------------------------------------------------------------

    async def _link_for(self, host: str, port: int) -> RedisBroker:
        name = f"{host}:{port}"
        async with self._lock:
            link = self._links.get(name)
            if link is not None:
                return link
            if self._on_message is None or self._on_resync is None:
                raise BrokerUnavailable("subscribe: broker is not started")
            link = RedisBroker(
                self._node_url(host, port),
                node_id=self._node_id,
                key_prefix=self._prefix,
                timings=self._timings,
            )
            await link.start(self._on_message, self._on_resync)
            self._links[name] = link
            return link

    def _node_url(self, host: str, port: int) -> str:
        auth = ""
        if self._password is not None:
            auth = f"{quote(self._user or '', safe='')}:{quote(self._password, safe='')}@"
        return f"redis://{auth}{host}:{port}"
