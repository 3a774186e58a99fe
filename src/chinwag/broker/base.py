"""What processes share besides the database, as two small interfaces:

- ``PubSub`` moves opaque bytes between processes on channel names; it never sees
  rooms or models;
- ``ExpiringState`` keeps small *expiring sets* (presence: who is connected where)
  and *expiring values* (per-node stats snapshots). An entry lives only while its
  owner keeps refreshing it, so a process that dies without running any clean-up
  disappears from every set within its TTL.

Each has an in-memory twin (``memory.py``); one Redis class implements both
(``Broker``), since one connection pool serves them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

#: Called for every message on a subscribed channel, in the order the broker saw them.
OnMessage = Callable[[str, bytes], None]
#: Called after the broker lost and regained its connection: messages published in
#: between may be lost, so callers must recover from the store ("history after seq N").
OnResync = Callable[[], None]


class BrokerUnavailable(Exception):
    """The broker cannot be reached now (down, restarting, timed out).

    Raised by ``publish``, the expiring sets and values, and by ``start`` when the first
    connection fails, always within a bounded time (an operation never hangs). The
    caller decides what to do: the store is the truth, so a lost publish is recovered
    by "history after seq N" like any other missed message.
    """


class PubSub(Protocol):
    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        """Connect and start delivering messages of subscribed channels to ``on_message``."""

    async def close(self) -> None:
        """Stop delivering, drop subscriptions and connections. Idempotent."""

    async def publish(self, channel: str, payload: bytes) -> None:
        """Send ``payload`` to every process subscribed to ``channel`` (this one included)."""

    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel``. Idempotent."""

    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``. Idempotent."""

    async def healthy(self) -> bool:
        """True when the broker can be reached now."""


class ExpiringState(Protocol):
    async def set_add(self, key: str, member: str, ttl: float) -> None:
        """Add or refresh ``member`` in the expiring set ``key`` for ``ttl`` seconds."""

    async def set_remove(self, key: str, member: str) -> None:
        """Remove ``member`` from ``key`` now."""

    async def set_members(self, key: str) -> list[str]:
        """Members of ``key`` whose TTL has not run out."""

    async def set_count(self, key: str) -> int:
        """How many members of ``key`` have not run out (without fetching them)."""

    async def set_owners(self, key: str, sep: str) -> list[str]:
        """The distinct parts before the last ``sep`` of the live members of ``key``
        (a member without ``sep`` is its own owner), deduplicated where the set is:
        the users of a room's connections, one entry each however many connections."""

    async def set_add_many(self, entries: Sequence[tuple[str, str]], ttl: float) -> None:
        """``set_add`` for many ``(key, member)`` pairs, in as few round trips as the
        broker allows (presence refreshes every connection at once)."""

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` under ``key`` for ``ttl`` seconds."""

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        """Values of ``keys`` (None where missing or expired)."""


class Broker(PubSub, ExpiringState, Protocol):
    """Both interfaces in one object (the Redis broker, the in-memory one)."""
