"""Expiring sets and values in Redis: the ``ExpiringState`` half of the Redis broker.

Expiring sets are sorted sets scored by expiry time in Redis server milliseconds
(``TIME`` inside a script), so nodes with skewed clocks agree; values are plain
keys with a PX expiry. A mixin: the class using it provides the client (a Redis or a
Redis Cluster client), the key prefix, its timings and ``_closed``; ``_guard`` here
bounds each operation in time and turns a Redis failure into ``BrokerUnavailable``."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError

from chinwag.broker.base import BrokerUnavailable

# What makes an operation fail: Redis unreachable, too slow, or refusing the command.
DOWN = (RedisError, OSError, TimeoutError)

# KEYS[1] = set key; ARGV[1] = ttl in ms, ARGV[2..] = members (one or many: a presence
# refresh adds a whole set in one call). The key lives as long as its longest-lived
# member, so a short TTL never cuts a longer one short.
_SET_ADD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expiry = now + tonumber(ARGV[1])
local scored = {}
for i = 2, #ARGV do
  scored[#scored + 1] = expiry
  scored[#scored + 1] = ARGV[i]
end
redis.call('ZADD', KEYS[1], unpack(scored))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.floor(tonumber(last[2])))
return 1
"""

# KEYS[1] = set key. Trims what has run out, returns the rest.
_SET_MEMBERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
"""

# KEYS[1] = set key, ARGV[1] = separator. The distinct parts before the last separator
# of the live members: a room's users, not each of their connections, cross the wire.
_SET_OWNERS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local sep, seen, out = ARGV[1], {}, {}
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')) do
  local cut, from = nil, 1
  while true do
    local at = string.find(member, sep, from, true)
    if not at then break end
    cut, from = at, at + 1
  end
  local owner = cut and string.sub(member, 1, cut - 1) or member
  if not seen[owner] then
    seen[owner] = true
    out[#out + 1] = owner
  end
end
return out
"""

# KEYS[1] = set key. How many members have not run out (O(log n): nothing is sent).
_SET_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')
"""

#: ``set_add_many`` adds at most this many members of one set per script call (Lua's
#: ``unpack`` has a stack limit; a bounded call also keeps Redis responsive).
SET_ADD_BATCH = 500


@dataclass(frozen=True, slots=True)
class RedisTimings:
    """Every duration the broker uses; tests shrink them."""

    #: Bound on connecting, and on each command's write and read (seconds).
    op_timeout: float = 1.0
    #: First and largest pause between reconnect attempts of the pub/sub link.
    backoff_min: float = 0.05
    backoff_max: float = 2.0
    #: An idle pub/sub link is pinged after this long; no answer in as long again
    #: and the link counts as dead (catches a peer that vanished without a FIN).
    heartbeat: float = 5.0


class RedisExpiringState:
    _client: Redis | RedisCluster
    _prefix: str
    _timings: RedisTimings
    _closed: bool

    @contextlib.asynccontextmanager
    async def _guard(self, what: str) -> AsyncIterator[None]:
        """Bound one operation in time and turn every Redis failure into BrokerUnavailable."""
        if self._closed:
            raise BrokerUnavailable(f"{what}: broker is closed")
        try:
            async with asyncio.timeout(2 * self._timings.op_timeout):
                yield
        except DOWN as exc:
            raise BrokerUnavailable(f"{what}: {exc or type(exc).__name__}") from exc

    def _register_scripts(self) -> None:
        self._set_add: AsyncScript = self._client.register_script(_SET_ADD)
        self._set_members: AsyncScript = self._client.register_script(_SET_MEMBERS)
        self._set_count: AsyncScript = self._client.register_script(_SET_COUNT)
        self._set_owners: AsyncScript = self._client.register_script(_SET_OWNERS)

    async def set_add(self, key: str, member: str, ttl: float) -> None:
        async with self._guard("set_add"):
            await self._set_add(keys=[self._set_key(key)], args=[_ms(ttl), member])

    async def set_remove(self, key: str, member: str) -> None:
        async with self._guard("set_remove"):
            await self._client.zrem(self._set_key(key), member)

    async def set_members(self, key: str) -> list[str]:
        async with self._guard("set_members"):
            raw = await self._set_members(keys=[self._set_key(key)])
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    async def set_count(self, key: str) -> int:
        async with self._guard("set_count"):
            return int(await self._set_count(keys=[self._set_key(key)]))

    async def set_owners(self, key: str, sep: str) -> list[str]:
        async with self._guard("set_owners"):
            raw = await self._set_owners(keys=[self._set_key(key)], args=[sep])
        return [m.decode() if isinstance(m, bytes) else str(m) for m in raw]

    async def set_add_many(self, entries: Sequence[tuple[str, str]], ttl: float) -> None:
        """``set_add`` grouped by set: one script call per set and ``SET_ADD_BATCH``
        members, all in one pipeline (one round trip for a whole presence refresh),
        bounded in time like a single command."""
        by_key: dict[str, list[str]] = {}
        for key, member in entries:
            by_key.setdefault(key, []).append(member)
        calls = [
            (self._set_key(key), [_ms(ttl), *members[start : start + SET_ADD_BATCH]])
            for key, members in by_key.items()
            for start in range(0, len(members), SET_ADD_BATCH)
        ]
        if calls:
            async with self._guard("set_add_many"):
                await self._set_add_calls(calls)

    async def _set_add_calls(self, calls: list[tuple[str, list[Any]]]) -> None:
        """Run the set-add script once per (set key, args), pipelined."""
        assert isinstance(self._client, Redis)  # the cluster broker has its own
        async with self._client.pipeline(transaction=False) as pipe:
            for key, args in calls:
                await self._set_add(keys=[key], args=args, client=pipe)
            await pipe.execute()

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        async with self._guard("put"):
            await self._client.set(self._value_key(key), value, px=_ms(ttl))

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        if not keys:
            return []
        async with self._guard("get_many"):
            values = await self._mget([self._value_key(k) for k in keys])
        return [v if isinstance(v, bytes) else None for v in values]

    async def _mget(self, keys: list[str]) -> list[object]:
        """One MGET (a Redis Cluster broker reads per slot instead)."""
        return list(await self._client.mget(keys))

    def _channel(self, channel: str) -> bytes:
        return (self._prefix + channel).encode()

    def _set_key(self, key: str) -> str:
        return f"{self._prefix}set:{key}"

    def _value_key(self, key: str) -> str:
        return f"{self._prefix}val:{key}"


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))
