"""In-process twins of the broker interfaces: the default for a single process.
Nothing leaves the process."""

from __future__ import annotations

import time
from collections.abc import Sequence

from chinwag.broker.base import OnMessage, OnResync


class MemoryPubSub:
    """``PubSub`` within one process: a publish calls the subscriber at once."""

    def __init__(self) -> None:
        self._on_message: OnMessage | None = None
        self._channels: set[str] = set()

    async def start(self, on_message: OnMessage, on_resync: OnResync) -> None:
        self._on_message = on_message

    async def close(self) -> None:
        self._on_message = None
        self._channels.clear()

    async def publish(self, channel: str, payload: bytes) -> None:
        if self._on_message is not None and channel in self._channels:
            self._on_message(channel, payload)

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def healthy(self) -> bool:
        return True


class MemoryState:
    """``ExpiringState`` in this process's memory, expiring by the monotonic clock."""

    def __init__(self) -> None:
        self._sets: dict[str, dict[str, float]] = {}
        # key -> no member of the set expires before this: until then a count is len()
        # (a user's connections are counted at every connect).
        self._soonest: dict[str, float] = {}
        self._values: dict[str, tuple[bytes, float]] = {}

    async def set_add(self, key: str, member: str, ttl: float) -> None:
        expires = time.monotonic() + ttl
        self._sets.setdefault(key, {})[member] = expires
        if expires < self._soonest.get(key, float("inf")):
            self._soonest[key] = expires

    async def set_remove(self, key: str, member: str) -> None:
        entries = self._sets.get(key)
        if entries is not None:
            entries.pop(member, None)
            if not entries:
                del self._sets[key]
                self._soonest.pop(key, None)

    def _live(self, key: str) -> dict[str, float]:
        """The set's unexpired members, the expired ones dropped first."""
        entries = self._sets.get(key)
        if not entries:
            return {}
        now = time.monotonic()
        if now >= self._soonest.get(key, 0.0):
            for member in [m for m, exp in entries.items() if exp <= now]:
                del entries[member]
            self._soonest[key] = min(entries.values(), default=float("inf"))
        return entries

    async def set_members(self, key: str) -> list[str]:
        return list(self._live(key))

    async def set_count(self, key: str) -> int:
        return len(self._live(key))

    async def set_owners(self, key: str, sep: str) -> list[str]:
        return list({member.rsplit(sep, 1)[0] for member in self._live(key)})

    async def set_add_many(self, entries: Sequence[tuple[str, str]], ttl: float) -> None:
        for key, member in entries:
            await self.set_add(key, member, ttl)

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        self._values[key] = (value, time.monotonic() + ttl)

    async def get_many(self, keys: list[str]) -> list[bytes | None]:
        now = time.monotonic()
        out: list[bytes | None] = []
        for key in keys:
            item = self._values.get(key)
            out.append(item[0] if item is not None and item[1] > now else None)
        return out


class MemoryBroker(MemoryPubSub, MemoryState):
    """Both twins in one object, as ``create_app`` uses them."""

    def __init__(self) -> None:
        MemoryPubSub.__init__(self)
        MemoryState.__init__(self)
