"""SQLite's reader threads: every queued read gets its own rows or its own error,
from whichever event loop asked."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from chinwag.store.sql.sqlite_readers import SqliteReaders

Work = Callable[[SqliteReaders], Coroutine[Any, Any, Any]]


def _db(tmp_path: Path) -> str:
    path = str(tmp_path / "r.db")
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (n INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(n,) for n in range(100)])
    return path


def _run(tmp_path: Path, threads: int, *works: Work) -> list[Any]:
    """Each of ``works`` on an event loop of its own, in turn, on one set of
    readers over a table of 100 rows; the readers closed after."""
    readers = SqliteReaders(_db(tmp_path), threads)
    try:
        return [asyncio.run(work(readers)) for work in works]
    finally:
        readers.close()


def test_many_reads_at_once_each_get_their_own_rows(tmp_path: Path) -> None:
    async def work(readers: SqliteReaders) -> list[list[tuple[int]]]:
        reads = [readers.read("SELECT n FROM t WHERE n = ?", (n,)) for n in range(100)]
        return await asyncio.wait_for(asyncio.gather(*reads), 10)

    assert _run(tmp_path, 2, work) == [[[(n,)] for n in range(100)]]


def test_a_failing_read_fails_alone(tmp_path: Path) -> None:
    async def work(readers: SqliteReaders) -> None:
        bad = readers.read("SELECT nope FROM t", ())
        good = readers.read("SELECT count(*) FROM t", ())
        with pytest.raises(sqlite3.OperationalError, match="nope"):
            await asyncio.wait_for(bad, 10)
        assert await asyncio.wait_for(good, 10) == [(100,)]

    _run(tmp_path, 1, work)


def test_reads_cannot_write(tmp_path: Path) -> None:
    async def work(readers: SqliteReaders) -> None:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await asyncio.wait_for(readers.read("DELETE FROM t", ()), 10)

    _run(tmp_path, 1, work)


def test_a_second_event_loop_is_answered_too(tmp_path: Path) -> None:
    async def count(readers: SqliteReaders) -> list[tuple[int]]:
        return await asyncio.wait_for(readers.read("SELECT count(*) FROM t", ()), 10)

    assert _run(tmp_path, 1, count, count) == [[(100,)], [(100,)]]
