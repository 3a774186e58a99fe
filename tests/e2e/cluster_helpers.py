"""Starting a cluster of chinwag processes over one PostgreSQL and one Redis, and
waiting on what it shares (presence, participants) with a deadline."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from chinwag.client import ChatClient
from tests.support import (
    Server,
    require_service,
)

REDIS_URL = "redis://127.0.0.1:6379/0"
SERVE = [sys.executable, "-m", "chinwag", "serve"]
PRESENCE_TTL = 2.0
TYPING_TIMEOUT = 1.0


def cluster_env(database_url: str, broker_url: str = REDIS_URL, **extra: Any) -> dict[str, Any]:
    """Settings every process of one cluster shares (a fresh key prefix per cluster)."""
    return {
        "DATABASE_URL": database_url,
        "BROKER_URL": broker_url,
        "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:10]}:",
        "PRESENCE_TTL": PRESENCE_TTL,
        "TYPING_TIMEOUT": TYPING_TIMEOUT,
        **extra,
    }


async def start_cluster(
    start: Callable[..., Awaitable[Server]], size: int, env: dict[str, Any]
) -> list[Server]:
    """Start ``size`` processes: the first alone (it migrates and creates the admin),
    the others together. Starting all at once races two admin INSERTs on a fresh
    database and one process dies of the unique violation (upsert_admin selects,
    then inserts)."""
    first = await start(**env)
    return [first, *await asyncio.gather(*(start(**env) for _ in range(size - 1)))]


async def require_backends() -> None:
    await require_service("postgres", "127.0.0.1", 5432)
    await require_service("redis", "127.0.0.1", 6379)


async def eventually(
    check: Callable[[], Awaitable[bool]], within: float = 10, what: str = "condition"
) -> float:
    """Poll ``check`` until it holds; the seconds it took. Fails after ``within``."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    while not await check():
        if loop.time() - start > within:
            pytest.fail(f"{what} did not hold within {within}s")
        await asyncio.sleep(0.05)
    return loop.time() - start


async def participants(srv: Server, room: str, user: Any) -> list[str]:
    r = await srv.get(f"/api/v1/ws/rooms/{room}", user)
    assert r.status_code == 200, r.text
    return sorted(r.json()["participants"])


async def attached(srv: Server, user: Any) -> ChatClient:
    """Connect and wait until the server has registered the connection everywhere
    (``connect`` comes first; the ``pong`` to a ping comes after the attach)."""
    client = await srv.connect(user)
    await client.send({"type": "ping"})
    await client.expect("pong")
    return client


def is_presence(username: str, status: str) -> Callable[[dict[str, Any]], bool]:
    return lambda f: f["data"]["username"] == username and f["data"]["status"] == status
