"""The room-privacy migration on a database that already holds rooms and files, on
SQLite and PostgreSQL: private rooms become ``joined``, files are bound to the room
row they were shared in, and files of a deleted (perhaps re-created) room go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from chinwag.store.sql.database import MIGRATIONS, Database
from tests.support import postgres_database, require_service

pytestmark = pytest.mark.storage

BEFORE = "0002"  # the revision this migration follows


@pytest.fixture
async def db(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        database = Database(f"sqlite+aiosqlite:///{tmp_path / 'old.db'}")
        yield database
        await database.close()
        return
    await require_service("postgres", "127.0.0.1", 5432)
    async with postgres_database() as url:
        database = Database(url)
        yield database
        await database.close()


def _upgrade_to(revision: str):  # type: ignore[no-untyped-def]
    def run(connection: Connection) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)

    return run


OLD_ROWS = [
    "INSERT INTO rooms (id, room_id, room_name, room_type, owner, last_seq, created_at) VALUES "
    "(1, 'dm', 'dm', 'private', 'ann', 0, '2026-01-01 00:00:00'), "
    "(2, 'team', 'team', 'group', 'ann', 0, '2026-01-01 00:00:00'), "
    "(3, 'reborn', 'reborn', 'shared', 'eve', 0, '2026-03-01 00:00:00')",
    "INSERT INTO room_members (room_pk, username, joined_at, delivered_seq, read_seq) VALUES "
    "(1, 'ann', '2026-01-01 00:00:00', 0, 0)",
    # kept: shared in 'team'; gone: shared in the 'reborn' id before that room was deleted
    # and created again by someone else; kept: a file without a room
    "INSERT INTO files (file_id, owner, room_id, file_name, file_size, mime_type, checksum, "
    "stored_name, created_at) VALUES "
    "('f-team', 'ann', 'team', 'a.txt', 1, 'text/plain', 'c', 's1', '2026-02-01 00:00:00'), "
    "('f-old', 'ann', 'reborn', 'b.txt', 1, 'text/plain', 'c', 's2', '2026-02-01 00:00:00'), "
    "('f-mine', 'ann', NULL, 'c.txt', 1, 'text/plain', 'c', 's3', '2026-02-01 00:00:00')",
]


async def test_existing_rooms_and_files_are_carried_over(db: Database) -> None:
    async with db.engine.begin() as conn:
        await conn.run_sync(_upgrade_to(BEFORE))
        for statement in OLD_ROWS:
            await conn.execute(text(statement))
    await db.migrate()
    async with db.engine.connect() as conn:
        rooms: dict[str, str] = dict(
            (await conn.execute(text("SELECT room_id, history_visibility FROM rooms"))).all()
        )
        files: dict[str, int] = dict(
            (await conn.execute(text("SELECT file_id, room_pk FROM files"))).all()
        )
        joined = (await conn.execute(text("SELECT joined_seq FROM room_members"))).scalar()
    assert rooms == {"dm": "joined", "team": "shared", "reborn": "shared"}
    assert files == {"f-team": 2, "f-mine": None}
    assert joined == 0  # existing members could read everything already
