"""Sessions of one room catching up from the same seq share one store read (a real
SQLite store): after a broker outage every session of every room re-reads, and a
big room must cost one read, not one per connection."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chinwag.broker.memory import MemoryBroker
from chinwag.core.events import Events
from chinwag.core.hub import Hub
from chinwag.core.presence import Presence
from chinwag.store.sql import SqlStore


class Reads:
    """Forwards to the real event store, counting ``after`` reads."""

    def __init__(self, events: Any) -> None:
        self._events = events
        self.after_calls: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)

    async def after(self, room_id: str, after_seq: int, limit: int) -> Any:
        self.after_calls.append((room_id, after_seq))
        return await self._events.after(room_id, after_seq, limit)


class Spied:
    def __init__(self, store: SqlStore) -> None:
        self.rooms = store.rooms
        self.events = Reads(store.events)


@dataclass
class Reader:
    username: str


async def events_over(tmp_path: Path) -> tuple[SqlStore, Events, Reads]:
    store = SqlStore(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
    await store.start()
    await store.users.create("alice", "h")
    for room in ("r", "other"):
        await store.rooms.create(room, room, "shared", "alice")
        for i in range(5):
            await store.events.append(room, "chat", {"n": i}, sender="alice")
    broker = MemoryBroker()
    hub = Hub(broker, None)  # type: ignore[arg-type]  # no gaps, no commands here
    spied = Spied(store)
    events = Events(spied, hub, Presence(broker, hub, 30))  # type: ignore[arg-type]
    return store, events, spied.events


async def test_sessions_catching_up_from_one_seq_share_one_read(tmp_path: Path) -> None:
    store, events, reads = await events_over(tmp_path)
    try:
        readers = [Reader(f"u{i}") for i in range(50)]
        pages = await asyncio.gather(
            *(
                events.fetch_after(r, "r", 2)  # type: ignore[arg-type]
                for r in readers
            )
        )
        assert reads.after_calls == [("r", 2)]
        assert all(page == pages[0] for page in pages)
        assert [seq for seq, _ in pages[0]] == [3, 4, 5]
    finally:
        await store.close()


async def test_other_rooms_and_other_seqs_are_read_apart_and_later_reads_are_fresh(
    tmp_path: Path,
) -> None:
    store, events, reads = await events_over(tmp_path)
    try:
        reader = Reader("bob")
        await asyncio.gather(
            events.fetch_after(reader, "r", 0),  # type: ignore[arg-type]
            events.fetch_after(reader, "r", 3),  # type: ignore[arg-type]
            events.fetch_after(reader, "other", 0),  # type: ignore[arg-type]
        )
        assert sorted(reads.after_calls) == [("other", 0), ("r", 0), ("r", 3)]
        await store.events.append("r", "chat", {"n": 5}, sender="alice")
        page = await events.fetch_after(reader, "r", 3)  # type: ignore[arg-type]
        assert [seq for seq, _ in page] == [4, 5, 6]  # a new read, not the old page
    finally:
        await store.close()


async def test_a_reader_that_leaves_does_not_cancel_the_others(tmp_path: Path) -> None:
    store, events, reads = await events_over(tmp_path)
    try:
        leaving = asyncio.ensure_future(events.fetch_after(Reader("a"), "r", 0))  # type: ignore[arg-type]
        staying = asyncio.ensure_future(events.fetch_after(Reader("b"), "r", 0))  # type: ignore[arg-type]
        await asyncio.sleep(0)  # both are waiting on the one read
        leaving.cancel()
        assert len(await asyncio.wait_for(staying, 10)) == 5
        assert reads.after_calls == [("r", 0)]
    finally:
        await store.close()
