"""Reads of a SQLite file on threads of their own, each with its own sqlite3
connection (WAL: they read beside the writer).

A read is queued with its asyncio future; a thread takes every read waiting, runs
them and hands all their results back to the loop in one wake-up. Under a connect
storm, where every connection makes several small reads, this is one thread hand-off
for many reads, where ``run_in_executor`` costs a ``concurrent.futures.Future``
(a lock and a condition), a chained asyncio future and a wake-up for each."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from typing import Any

#: A read waiting for a thread: (sql, args, the future its rows go to).
_Read = tuple[str, tuple[Any, ...], "asyncio.Future[list[Any]]"]
_STOP = None


class SqliteReaders:
    def __init__(self, path: str, threads: int) -> None:
        self._path = path
        self._threads = threads
        self._queue: queue.SimpleQueue[_Read | None] = queue.SimpleQueue()
        self._running: list[threading.Thread] = []

    def read(self, sql: str, args: tuple[Any, ...]) -> asyncio.Future[list[Any]]:
        """The rows of one statement (autocommit: it sees what was committed when it
        starts)."""
        if not self._running:
            for n in range(self._threads):
                t = threading.Thread(target=self._serve, name=f"chinwag-sqlite-read-{n}")
                t.daemon = True
                t.start()
                self._running.append(t)
        future: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._queue.put((sql, args, future))
        return future

    def close(self) -> None:
        """Stop the threads once the reads queued before are done."""
        for _ in self._running:
            self._queue.put(_STOP)
        for t in self._running:
            t.join()
        self._running.clear()

    def _serve(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        try:
            conn.execute("PRAGMA query_only=ON")
            while True:
                batch = [self._queue.get()]
                while batch[-1] is not _STOP:
                    try:
                        batch.append(self._queue.get_nowait())
                    except queue.Empty:
                        break
                done: list[tuple[asyncio.Future[list[Any]], Any, bool]] = []
                for item in batch:
                    if item is _STOP:
                        continue
                    sql, args, future = item
                    try:
                        done.append((future, conn.execute(sql, args).fetchall(), True))
                    except Exception as exc:
                        done.append((future, exc, False))
                if done:
                    # one wake-up per loop (a store is used from one loop but for
                    # tests and command-line tools that run several in turn)
                    for loop in {future.get_loop() for future, _, _ in done}:
                        mine = [d for d in done if d[0].get_loop() is loop]
                        with contextlib.suppress(RuntimeError):  # its loop has closed
                            loop.call_soon_threadsafe(_settle, mine)
                if batch[-1] is _STOP:
                    return
        finally:
            conn.close()


def _settle(done: list[tuple[asyncio.Future[list[Any]], Any, bool]]) -> None:
    """On the loop: hand each read its rows or its error (unless its caller left)."""
    for future, outcome, ok in done:
        if future.cancelled():
            continue
        if ok:
            future.set_result(outcome)
        else:
            future.set_exception(outcome)
