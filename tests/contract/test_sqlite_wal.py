"""SQLite's write-ahead log is copied back into the database file beside the appends,
not inside an append's commit (the append connection never checkpoints itself).

The database file is only ever read here by its size: while the store runs, the
file alone need not be a database a reader can open (a checkpoint may be writing
it), but it grows only when a checkpoint copies the appended pages into it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from chinwag.store.sql import SqlStore
from chinwag.store.sql.database import CHECKPOINT_EVERY


async def test_appends_are_checkpointed_into_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = SqlStore(f"sqlite+aiosqlite:///{path}")
    await store.start()
    try:
        await store.users.create("u", "hash")
        await store.rooms.create("r", "Room", "shared", "u")
        size_before = path.stat().st_size
        for i in range(CHECKPOINT_EVERY + 10):
            await store.events.append(
                "r", "chat", {"content": f"m{i}"}, sender="u", client_message_id=f"c{i}"
            )
        # The checkpoint the 200th append started, if it still runs
        checkpoint = store.db._checkpoint
        if checkpoint is not None:
            await asyncio.wait_for(asyncio.shield(checkpoint), 10)
        assert path.stat().st_size > size_before
    finally:
        await store.close()
