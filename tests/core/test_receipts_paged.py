"""Receipts for an offline backlog are read from the store a page at a time (a real
SQLite store, the in-memory broker): no backlog turns into one unbounded query."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chinwag.broker.memory import MemoryBroker
from chinwag.core.events import Events
from chinwag.core.hub import Hub
from chinwag.core.presence import Presence
from chinwag.core.sequencer import PAGE
from chinwag.store.sql import SqlStore


class Reads:
    """Forwards to the real event store, keeping the size of each chats_between."""

    def __init__(self, events: Any) -> None:
        self._events = events
        self.sizes: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)

    async def chats_between(self, *args: Any) -> Any:
        found = await self._events.chats_between(*args)
        self.sizes.append(len(found))
        return found


class Spied:
    """The real store, its event reads watched."""

    def __init__(self, store: SqlStore) -> None:
        self.rooms = store.rooms
        self.events = Reads(store.events)


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes]] = []

    def on_message(self, channel: str, payload: bytes) -> None:
        self.messages.append((channel, payload))

    def on_resync(self) -> None:
        pass


async def test_a_long_backlog_is_reported_in_pages(tmp_path: Path) -> None:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    try:
        for user in ("alice", "bob"):
            await store.users.create(user, "h")
        await store.rooms.create("r", "r", "shared", "alice")
        await store.rooms.add_member("r", "bob")
        total = 2 * PAGE + 7
        for i in range(total):
            await store.events.append("r", "chat", {"role": "user", "n": i}, sender="alice")
        broker, inbox = MemoryBroker(), Inbox()
        hub = Hub(broker, None)  # type: ignore[arg-type]  # no gaps, no commands here
        await broker.start(inbox.on_message, inbox.on_resync)
        await broker.subscribe("user:alice")
        spied = Spied(store)
        events = Events(spied, hub, Presence(broker, hub, 30))  # type: ignore[arg-type]
        reads = spied.events
        await events.mark_delivered("bob", "r", total, report=True)
        assert len(inbox.messages) == total  # one receipt per chat, to its sender
        assert max(reads.sizes) <= PAGE and len(reads.sizes) == 3
    finally:
        await store.close()
