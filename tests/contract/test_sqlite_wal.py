"""SQLite's write-ahead log is copied back into the database file beside the appends,
not inside an append's commit (the append connection never checkpoints itself)."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from chinwag.store.sql import SqlStore
from chinwag.store.sql.database import CHECKPOINT_EVERY


def events_in_the_database_file(path: Path) -> int:
    # immutable=1: the file alone, as if there were no WAL beside it
    with closing(sqlite3.connect(f"file:{path}?immutable=1", uri=True)) as conn:
        try:
            return int(conn.execute("SELECT count(*) FROM room_events").fetchone()[0])
        except sqlite3.OperationalError:  # not even the schema is in the file yet
            return 0


async def test_appends_are_checkpointed_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.start()
    try:
        await store.users.create("u", "hash")
        await store.rooms.create("r", "Room", "shared", "u")
        for i in range(CHECKPOINT_EVERY + 10):
            await store.events.append(
                "r", "chat", {"content": f"m{i}"}, sender="u", client_message_id=f"c{i}"
            )
        # The checkpoint the 200th append started, if it still runs: the file is
        # read alone only while nothing writes it.
        checkpoint = store.db._checkpoint
        if checkpoint is not None:
            await asyncio.wait_for(asyncio.shield(checkpoint), 10)
        assert await asyncio.to_thread(events_in_the_database_file, path) >= CHECKPOINT_EVERY
    finally:
        await store.close()
