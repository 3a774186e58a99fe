"""``store-sqlite`` / ``store-postgres`` (``store_rep``): the real ``SqlStore.events.append``
(seq from the room row, event insert, one transaction) in this process, pinned to the
server cpu, on a fresh SQLite file / a fresh PostgreSQL database (created and dropped
here) per repetition; N events by 1 writer, then by 8 writers at once (8 users) into one
room, then by 8 writers each in a room of their own."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

from extras_support import pinned
from procstat import Pinning
from servers import TargetUnavailable

# (key, writers, rooms): one writer; 8 senders in one room; 8 senders each in a room of
# their own. Each writer is its own user, a member of the room it writes to.
STORE_CELLS = (("msgs_per_s_1", 1, 1), ("msgs_per_s_8", 8, 1), ("msgs_per_s_8_rooms", 8, 8))


async def store_cell(url: str, events: int, writers: int, rooms: int = 1) -> float:
    """Messages appended per second: ``events`` spread over ``writers`` concurrent
    writers (a user each) into ``rooms`` new rooms (writer w writes to room w % rooms)."""
    from chinwag.store.sql import SqlStore

    store = SqlStore(url)
    await store.start()
    try:
        tag = f"bench-{uuid.uuid4().hex[:8]}"
        names = [f"{tag}-r{r}" for r in range(rooms)]
        users = [f"{tag}-u{w}" for w in range(writers)]
        for user in users:
            await store.users.create(user, "x")
        for r, room in enumerate(names):
            await store.rooms.create(room, room, "shared", users[r])
        for w, user in enumerate(users[rooms:], start=rooms):
            await store.rooms.add_member(names[w % rooms], user)
        per = events // writers

        async def writer(w: int) -> None:
            for i in range(per):
                await store.events.append(
                    names[w % rooms],
                    "chat",
                    {"content": f"m{i}"},
                    sender=users[w],
                    client_message_id=f"{w}-{i}",
                    require_member=True,
                )

        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        elapsed = time.perf_counter() - started
        each = per * writers // rooms
        for room in names:
            last = await store.events.after(room, each - 1)
            assert [e.seq for e in last] == [each], "seqs must be gapless"
        return per * writers / elapsed
    finally:
        await store.close()


async def _store_cells(backend: str, workdir: Path, events: int) -> dict[str, float]:
    from databases import PG, create_database, drop_database

    db = None
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / 'store.db'}"
    else:
        try:
            db = await create_database()
        except OSError as e:
            raise TargetUnavailable(
                f"PostgreSQL not reachable at {PG['host']}:{PG['port']} ({e})"
            ) from e
        url = f"postgresql+asyncpg://{PG['user']}@{PG['host']}:{PG['port']}/{db}?ssl=disable"
    try:
        return {
            key: round(await store_cell(url, events, writers, rooms))
            for key, writers, rooms in STORE_CELLS
        }
    finally:
        if db:
            await drop_database(db)


def store_rep(backend: str, pin: Pinning, workdir: Path, events: int = 2000) -> dict[str, float]:
    """One repetition on a fresh database: the STORE_CELLS.
    backend: "sqlite" or "postgres" (TargetUnavailable if PostgreSQL is not there)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with pinned(pin.server_cpu):
        return asyncio.run(_store_cells(backend, workdir, events))
