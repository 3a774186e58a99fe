"""SQLite's reader threads: every queued read gets its own rows or its own error,
from whichever event loop asked."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from chinwag.store.sql.sqlite_readers import SqliteReaders


def _db(tmp_path: Path) -> str:
    path = str(tmp_path / "r.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(100)])
    return path


def test_many_reads_at_once_each_get_their_own_rows(tmp_path: Path) -> None:
    readers = SqliteReaders(_db(tmp_path), threads=2)

    async def run() -> list[list[tuple[int]]]:
        reads = [readers.read("SELECT n FROM t WHERE n = ?", (n,)) for n in range(100)]
        return await asyncio.wait_for(asyncio.gather(*reads), 10)

    try:
        assert asyncio.run(run()) == [[(n,)] for n in range(100)]
    finally:
        readers.close()


def test_a_failing_read_fails_alone(tmp_path: Path) -> None:
    readers = SqliteReaders(_db(tmp_path), threads=1)

    async def run() -> None:
        bad = readers.read("SELECT nope FROM t", ())
        good = readers.read("SELECT count(*) FROM t", ())
        with pytest.raises(sqlite3.OperationalError, match="nope"):
            await asyncio.wait_for(bad, 10)
        assert await asyncio.wait_for(good, 10) == [(100,)]

    try:
        asyncio.run(run())
    finally:
        readers.close()


def test_reads_cannot_write(tmp_path: Path) -> None:
    readers = SqliteReaders(_db(tmp_path), threads=1)

    async def run() -> None:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await asyncio.wait_for(readers.read("DELETE FROM t", ()), 10)

    try:
        asyncio.run(run())
    finally:
        readers.close()


def test_a_second_event_loop_is_answered_too(tmp_path: Path) -> None:
    readers = SqliteReaders(_db(tmp_path), threads=1)

    async def count() -> list[tuple[int]]:
        return await asyncio.wait_for(readers.read("SELECT count(*) FROM t", ()), 10)

    try:
        assert asyncio.run(count()) == [(100,)]
        assert asyncio.run(count()) == [(100,)]
    finally:
        readers.close()
