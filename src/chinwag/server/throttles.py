"""Throttles on the HTTP side: failed logins per (username, address), registrations
per address, and every HTTP request per address.

Their state lives where every process sees it: in Redis when the broker is Redis
(one moving window per key, expiring by itself), in memory with the in-process
broker. The ``limits`` library provides both storages and the windows."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import orjson
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisClusterStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError
from starlette.types import ASGIApp, Receive, Scope, Send

from chinwag.protocol.errors import ChatError, RateLimited
from chinwag.settings import Settings

log = logging.getLogger(__name__)
#: How much longer each further tier of failed logins makes the wait.
GROWTH = 10
TIERS = 3


class ThrottleUnavailable(RateLimited):
    """The shared throttle state cannot be read (Redis down): logins and
    registrations are refused rather than let through unthrottled."""

    http_status = 503


@dataclass
class LimitStore:
    """The storage every throttle of a process shares, and how to close it."""

    storage: Storage
    pool: object | None = None  # redis.asyncio.ConnectionPool when on Redis

    @classmethod
    def for_settings(cls, settings: Settings) -> LimitStore:
        if not settings.uses_redis:
            return cls(MemoryStorage())
        if settings.uses_redis_cluster:  # limits' own cluster client (redis-py's)
            return cls(
                RedisClusterStorage(
                    "async+" + settings.broker_url,
                    wrap_exceptions=True,
                    implementation="redispy",
                    key_prefix=f"{settings.redis_key_prefix}limits",
                    socket_timeout=2,
                    socket_connect_timeout=2,
                )
            )
        from redis.asyncio import ConnectionPool

        pool = ConnectionPool.from_url(
            settings.broker_url, socket_timeout=2, socket_connect_timeout=2
        )
        storage = RedisStorage(
            "async+" + settings.broker_url,
            wrap_exceptions=True,
            implementation="redispy",
            key_prefix=f"{settings.redis_key_prefix}limits",
            connection_pool=pool,  # type: ignore[arg-type]
        )
        return cls(storage, pool)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.aclose()  # type: ignore[attr-defined]


def per(amount: int, seconds: float, namespace: str) -> RateLimitItem:
    return RateLimitItemPerSecond(amount, max(1, math.ceil(seconds)), namespace=namespace)


class Windows:
    """Several moving windows over the same keys; a key is over the limit while any
    window is full, and ``retry_after`` is the wait until every window has room."""

    def __init__(self, store: LimitStore, items: Sequence[RateLimitItem]) -> None:
        self.items = list(items)
        self.limiter = MovingWindowRateLimiter(store.storage)

    async def retry_after(self, *key: str) -> int:
        """0 when every window has room, else whole seconds to wait (≥ 1)."""
        wait = 0.0
        now = time.time()
        try:
            for item in self.items:
                if not await self.limiter.test(item, *key):
                    reset, _ = await self.limiter.get_window_stats(item, *key)
                    wait = max(wait, reset - now)
        except StorageError as exc:
            raise ThrottleUnavailable(
                "the throttle state is unreachable; try again later", retry_after=5
            ) from exc
        return max(1, math.ceil(wait)) if wait > 0 else 0

    async def hit(self, *key: str) -> int:
        """Count one event for ``key`` in every window; like ``retry_after`` when a
        window was already full (then nothing is counted in it)."""
        try:
            results = [await self.limiter.hit(item, *key) for item in self.items]
        except StorageError as exc:
            raise ThrottleUnavailable(
                "the throttle state is unreachable; try again later", retry_after=5
            ) from exc
        return 0 if all(results) else await self.retry_after(*key)

    async def clear(self, *key: str) -> None:
        try:
            for item in self.items:
                await self.limiter.clear(item, *key)
        except StorageError as exc:
            log.warning("could not clear a throttle entry: %s", exc)


class LoginThrottle:
    """Failed logins per (username, address), with growing waits: after
    ``max_failures`` failures within ``lockout`` seconds that pair waits out the
    window; ``GROWTH`` times longer windows then hold twice, four times as many
    failures (5 in 1 min, 10 in 10 min, 20 in 100 min by default). A correct password
    from another address, or another user's login from this one, is never refused
    because of them; the HTTP rate limit bounds guesses spread over many names."""

    def __init__(self, store: LimitStore, max_failures: int, lockout: float) -> None:
        self.windows = Windows(
            store,
            [
                per(max_failures * 2**tier, lockout * GROWTH**tier, f"login{tier}")
                for tier in range(TIERS)
            ],
        )

    async def check(self, username: str, address: str) -> None:
        wait = await self.windows.retry_after(quote(username, safe=""), address)
        if wait:
            raise RateLimited(
                "too many failed logins for this user from this address; try again later",
                retry_after=wait,
            )

    async def failed(self, username: str, address: str) -> None:
        await self.windows.hit(quote(username, safe=""), address)

    async def succeeded(self, username: str, address: str) -> None:
        await self.windows.clear(quote(username, safe=""), address)


class AddressLimit:
    """At most ``amount`` events per address in any ``window`` seconds."""

    def __init__(self, store: LimitStore, amount: int, window: float, what: str) -> None:
        self.what = what
        self.windows = Windows(store, [per(amount, window, what)])

    async def hit(self, address: str) -> None:
        wait = await self.windows.hit(address)
        if wait:
            raise RateLimited(
                f"too many {self.what} requests from this address; try again later",
                retry_after=wait,
            )


def client_address(scope: Scope) -> str:
    """The peer's address, or the one a trusted proxy named (FORWARDED_ALLOW_IPS:
    uvicorn's proxy-headers middleware has already rewritten ``client``)."""
    client = scope.get("client")
    return str(client[0]) if client else "?"


class HttpRateLimit:
    """ASGI middleware: HTTP requests per client address (HTTP_RATE_LIMIT_*).
    ``/health`` and ``/metrics`` are exempt (load balancers and scrapers poll them);
    WebSocket connections have limits of their own."""

    EXEMPT = frozenset({"/health", "/metrics"})

    def __init__(self, app: ASGIApp, limit: AddressLimit) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] not in self.EXEMPT:
            try:
                await self.limit.hit(client_address(scope))
            except ThrottleUnavailable:
                pass  # the general limit fails open; logins and registrations do not
            except RateLimited as exc:
                await _refuse(send, exc)
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, exc: ChatError) -> None:
    body = orjson.dumps({"detail": exc.message, "code": exc.code.value})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if "retry_after" in exc.extra:
        headers.append((b"retry-after", str(exc.extra["retry_after"]).encode()))
    await send({"type": "http.response.start", "status": exc.http_status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
