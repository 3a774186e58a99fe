"""Engine, sessions and migrations.

SQLite runs in WAL mode; its writers are serialised in-process by ``write_lock``
(SQLite allows one writer; queueing in asyncio beats spinning on SQLITE_BUSY).
PostgreSQL serialises seq assignment itself through the room row's lock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from alembic import command
from alembic.config import Config
from sqlalchemy import Select, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from chinwag.store.sql.sqlite_readers import SqliteReaders

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: SQLite appends between two WAL checkpoints (a chat adds a few WAL pages; SQLite's
#: own automatic checkpoint comes at 1,000 pages).
CHECKPOINT_EVERY = 200
#: Threads serving ``Database.rows`` on a SQLite file, each on a connection of its own
#: (WAL: they read beside the writer).
READERS = 2
log = logging.getLogger(__name__)
T = TypeVar("T")
#: One statement on SQLite's append connection: its rows ([] for none).
Run = Callable[[str, Sequence[Any]], list[Any]]


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        # The database file; None for PostgreSQL and for an in-memory SQLite, which
        # lives in the one connection SQLAlchemy's static pool keeps.
        self.sqlite_file: str | None = None
        if self.is_sqlite:
            path = url.split(":///", 1)[1] if ":///" in url else ""
            kwargs["connect_args"] = {"timeout": 30}
            # Every use ends in commit or rollback; the pool's extra rollback on
            # return would be one more thread round trip per transaction.
            kwargs["pool_reset_on_return"] = None
            if path and path != ":memory:":
                self.sqlite_file = path
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                # Each aiosqlite connection is a thread; the default pool (5 kept, 10
                # more opened and closed again on demand) started a thread and re-ran
                # the pragmas for most connects during a reconnect storm.
                kwargs.update(pool_size=20, max_overflow=20)
        else:
            kwargs.update(pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._write_lock = asyncio.Lock()
        # PostgreSQL's append pool (see pg_write)
        self._pg_pool: asyncpg.Pool | None = None
        self._pg_pool_lock = asyncio.Lock()
        # SQLite's append thread and its connection (see sqlite_write)
        self._appender: ThreadPoolExecutor | None = None
        self._append_conn: sqlite3.Connection | None = None
        # ... and its WAL checkpoints (see _checkpoint_wal)
        self._appends_since_checkpoint = 0
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpointer: ThreadPoolExecutor | None = None
        self._checkpoint_conn: sqlite3.Connection | None = None
        # ... and its readers (see rows)
        self._readers = SqliteReaders(self.sqlite_file, READERS) if self.sqlite_file else None
        self._autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._compiled: dict[
            Select[*tuple[Any, ...]], tuple[str, tuple[str, ...], dict[str, Any]]
        ] = {}

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.sessions() as session:
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits on success and rolls back on error."""
        if self.is_sqlite:
            async with self._write_lock, self.sessions() as session, session.begin():
                yield session
        else:
            async with self.sessions() as session, session.begin():
                yield session

    @contextlib.asynccontextmanager
    async def write_conn(self) -> AsyncIterator[AsyncConnection]:
        """A Core-level transaction (no ORM unit of work) for the hot paths."""
        if self.is_sqlite:
            async with self._write_lock, self.engine.begin() as conn:
                yield conn
        else:
            async with self.engine.begin() as conn:
                yield conn

    async def sqlite_write(self, work: Callable[[Run], T]) -> T:
        """SQLite's hot write path (room appends): ``work`` runs its statements as one
        transaction in one thread hop, on a sqlite3 connection and a thread of its own,
        under the same write lock as every other writer; commits when it returns,
        rolls back when it raises. (aiosqlite costs a hop per statement and one for
        the commit, SQLAlchemy's adapter several.) An in-memory database has one
        connection only: the pool's."""
        if self.sqlite_file is None:
            async with self.write_conn() as c:
                return await c.run_sync(lambda sync: work(_sqlalchemy_run(sync)))
        async with self._write_lock:
            if self._appender is None:
                self._appender = ThreadPoolExecutor(1, thread_name_prefix="chinwag-sqlite-append")
            loop = asyncio.get_running_loop()
            done = await loop.run_in_executor(self._appender, self._in_transaction, work)
        self._appends_since_checkpoint += 1
        if self._appends_since_checkpoint >= CHECKPOINT_EVERY and self._checkpoint is None:
            self._appends_since_checkpoint = 0
            self._checkpoint = asyncio.ensure_future(self._checkpoint_wal())
        return done

    async def _checkpoint_wal(self) -> None:
        """Copy the WAL back into the database file beside the appends, on a thread
        and connection of its own. The append connection never checkpoints itself:
        SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL
        pages, and that commit (with everything queued behind it) waited for it."""
        try:
            if self._checkpointer is None:
                self._checkpointer = ThreadPoolExecutor(1, thread_name_prefix="chinwag-sqlite-wal")
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._checkpointer, self._passive_checkpoint)
        except Exception:
            log.exception("WAL checkpoint of %s failed", self.sqlite_file)
        finally:
            self._checkpoint = None

    def _passive_checkpoint(self) -> None:
        if self._checkpoint_conn is None:
            assert self.sqlite_file is not None
            self._checkpoint_conn = sqlite3.connect(self.sqlite_file, timeout=30)
        self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _in_transaction(self, work: Callable[[Run], T]) -> T:
        """On the append thread: ``work`` in one transaction of its connection."""
        conn = self._append_conn
        if conn is None:
            assert self.sqlite_file is not None
            conn = self._append_conn = sqlite3.connect(self.sqlite_file, timeout=30)
            for pragma in (*SQLITE_PRAGMAS, "PRAGMA wal_autocheckpoint=0"):
                conn.execute(pragma)

        def run(sql: str, params: Sequence[Any]) -> list[Any]:
            return conn.execute(sql, params).fetchall()

        try:
            done = work(run)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        return done

    async def pg_write(self, work: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        """PostgreSQL's hot write path (room appends): ``work`` on an asyncpg
        connection of a small pool of its own, with plain SQL: no SQLAlchemy
        statement building and greenlet hand-offs, no pre-ping round trip at checkout
        and no reset query at release (these connections keep no session state).
        No transaction is opened: each append is one statement, its own transaction,
        so it costs one round trip and nothing else."""
        pool = self._pg_pool or await self._open_pg_pool()
        async with pool.acquire() as conn:
            return await work(conn)

    async def _open_pg_pool(self) -> asyncpg.Pool:
        async with self._pg_pool_lock:
            if self._pg_pool is None:
                _, connect = self.engine.dialect.create_connect_args(self.engine.url)
                self._pg_pool = await asyncpg.create_pool(
                    min_size=1, max_size=10, reset=_keep_session, **connect
                )
            return self._pg_pool

    def _close_checkpointer(self) -> None:
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None

    def _close_append(self) -> None:
        if self._append_conn is not None:
            self._append_conn.close()
            self._append_conn = None

    async def rows(
        self, query: Select[*tuple[Any, ...]], params: dict[str, Any]
    ) -> list[Sequence[Any]]:
        """Run a one-statement read the cheap way, for the reads every connect and
        every catch-up makes. On a SQLite file the statement, compiled once, runs on a
        reader thread's own sqlite3 connection (``SqliteReaders``), where a pooled
        SQLAlchemy connection costs a checkout (and, past the pool's size in a connect
        storm, a new aiosqlite thread) plus several hops. On PostgreSQL it runs outside a
        transaction: no BEGIN and ROLLBACK round trips. Rows are plain tuples in the
        query's column order; on SQLite, DateTime and JSON columns come back as text
        (``stored_time`` and ``stored_json`` read either)."""
        if not self.is_sqlite:
            async with self._autocommit.connect() as c:
                return list((await c.execute(query, params)).all())
        compiled = self._compiled.get(query)
        if compiled is None:
            done = query.compile(dialect=self.engine.dialect)
            # positiontup: the bound names in order; params: their defaults (the
            # query's own literals, such as an implicit OFFSET 0).
            compiled = self._compiled[query] = (
                str(done),
                tuple(done.positiontup or ()),
                done.params,
            )
        sql, names, defaults = compiled
        values = {**defaults, **params}
        args = tuple(values[name] for name in names)
        if self._readers is not None:
            return await self._readers.read(sql, args)
        async with self.engine.connect() as c:
            return list(await (await _driver(c)).execute_fetchall(sql, args))

    async def migrate(self) -> None:
        """Apply every Alembic migration not yet applied (safe to call at each start-up)."""
        async with self.engine.begin() as conn:
            if not self.is_sqlite:
                # Several processes may start at once: one migrates, the others wait.
                await conn.execute(text("SELECT pg_advisory_xact_lock(7410411)"))
            await conn.run_sync(_upgrade)

    async def healthy(self) -> bool:
        try:
            async with asyncio.timeout(3):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    async def close(self) -> None:
        if self._checkpoint is not None:
            await self._checkpoint
        if self._checkpointer is not None:
            await asyncio.get_running_loop().run_in_executor(
                self._checkpointer, self._close_checkpointer
            )
            self._checkpointer.shutdown()
            self._checkpointer = None
        if self._appender is not None:
            await asyncio.get_running_loop().run_in_executor(self._appender, self._close_append)
            self._appender.shutdown()
            self._appender = None
        if self._readers is not None:
            self._readers.close()
        if self._pg_pool is not None:
            await self._pg_pool.close()
            self._pg_pool = None
        await self.engine.dispose()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """An append connection is returned to its pool as it is (see pg_write)."""


def _sqlalchemy_run(sync: Connection) -> Run:
    """``Run`` on a SQLAlchemy connection (the in-memory database's one)."""

    def run(sql: str, params: Sequence[Any]) -> list[Any]:
        result = sync.exec_driver_sql(sql, tuple(params))
        return list(result) if result.returns_rows else []

    return run


def naive_utc(at: datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite (naive UTC text)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


async def _driver(c: AsyncConnection) -> Any:
    """The aiosqlite connection under a SQLAlchemy connection."""
    raw = await c.get_raw_connection()
    assert raw.driver_connection is not None
    return raw.driver_connection


def stored_time(value: datetime | str) -> datetime:
    """A DateTime column from ``Database.rows``: as is, or, from SQLite, the text
    SQLAlchemy stores there (naive UTC ``YYYY-MM-DD HH:MM:SS.ffffff``) read back as
    SQLAlchemy would."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def stored_json(value: Any) -> Any:
    """A JSON column from ``Database.rows``: as is, or parsed from SQLite's text."""
    return json.loads(value) if isinstance(value, str) else value


def _upgrade(connection: Connection) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


# secure_delete: a deleted message's text is overwritten in the file, not only
# unlinked from the b-tree.
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
    "PRAGMA secure_delete=ON",
)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in SQLITE_PRAGMAS:
        cur.execute(pragma)
    cur.close()
