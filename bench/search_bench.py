"""Search latency (``GET /api/v1/search``'s store query) over many stored messages,
on SQLite FTS5 and PostgreSQL tsvector + GIN.

    flock /tmp/chinwag-suite.lock python bench/search_bench.py             # 1,000,000 messages
    python bench/search_bench.py --messages 100000 --queries 50           # quicker

The data set is written straight into the tables with SQL (the migrations make the
schema and its search index first, as chinwag does at start-up): one big room of 40%
of the messages and many rooms of 1,000, the searching user a member of the big room
and of half the small ones (another user of three small rooms only). Each message is
6-14 words drawn from a 50,000-word vocabulary with a Zipf distribution (like real
text: a few words in most messages, most words in few). Queries run through the real
``SqlSearch`` in this process, 20 results a page, for words of three frequencies,
over all the user's rooms and within one room (the big one and a small one: the
index, not the room's size, sets the cost). Prints p50/p99 in milliseconds per
database; PostgreSQL needs 127.0.0.1:5432 (a throwaway database is made and
dropped)."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from chinwag.store.sql import SqlStore

VOCABULARY = 50_000
SMALL_ROOM = 1_000
USER = "searcher"
FEW = "newcomer"  # a member of three small rooms only
FEW_ROOMS = (1, 3, 5)
PAGE = 20
# word rank (1 = most frequent) for each query kind
KINDS = {"common (rank 5)": 5, "medium (rank 500)": 500, "rare (rank 20000)": 20_000}


def words() -> list[str]:
    rng = random.Random(7)
    letters = "bcdfghjklmnprstvwz"
    vowels = "aeiou"
    out: set[str] = set()
    while len(out) < VOCABULARY:
        out.add("".join(rng.choice(letters) + rng.choice(vowels) for _ in range(rng.randint(2, 4))))
    return sorted(out, key=lambda w: (len(w), w))


def messages(total: int, vocab: list[str]) -> Iterator[tuple[int, int, str]]:
    """(room number, seq, content); room 0 is the big one."""
    rng = random.Random(11)
    cum = list(_cumulative([1 / rank for rank in range(1, len(vocab) + 1)]))
    big = int(total * 0.4)
    seqs: dict[int, int] = {}
    small_rooms = max(1, (total - big) // SMALL_ROOM)
    small = 0
    for i in range(total):
        if i % 5 < 2 and seqs.get(0, 0) < big:
            room = 0
        else:
            room, small = 1 + small % small_rooms, small + 1
        seqs[room] = seqs.get(room, 0) + 1
        text = " ".join(rng.choices(vocab, cum_weights=cum, k=rng.randint(6, 14)))
        yield room, seqs[room], text


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for w in weights:
        total += w
        yield total


def rooms_for(total: int) -> int:
    return 1 + max(1, (total - int(total * 0.4)) // SMALL_ROOM)


def chat_json(text: str, seq: int) -> str:
    return json.dumps(
        {
            "role": "user",
            "content": text,
            "username": f"u{seq % 50}",
            "user_id": 1,
            "client_message_id": None,
            "conversation_id": None,
            "timestamp": "2026-12-01T12:00:00.000Z",
        }
    )


def load_sqlite(path: Path, total: int, vocab: list[str]) -> None:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    db = sqlite3.connect(path)
    n_rooms = rooms_for(total)
    with db:
        db.executemany(
            "INSERT INTO rooms (id, room_id, room_name, room_type, owner, last_seq, "
            "members_version, created_at) VALUES (?, ?, ?, 'shared', 'owner', 0, 0, ?)",
            [(r + 1, f"room{r}", f"room{r}", now) for r in range(n_rooms)],
        )
        db.executemany(
            "INSERT INTO room_members (room_pk, username, joined_at, delivered_seq, "
            "read_seq) VALUES (?, ?, ?, 0, 0)",
            [(r + 1, USER, now) for r in range(n_rooms) if r % 2 == 0]
            + [(r + 1, FEW, now) for r in FEW_ROOMS],
        )
        db.executemany(
            "INSERT INTO room_events (room_pk, seq, type, data, sender, created_at) "
            "VALUES (?, ?, 'chat', ?, ?, ?)",
            (
                (room + 1, seq, chat_json(text, seq), f"u{seq % 50}", now)
                for room, seq, text in messages(total, vocab)
            ),
        )
        db.execute(
            "UPDATE rooms SET last_seq = (SELECT max(seq) FROM room_events "
            "WHERE room_pk = rooms.id)"
        )
    db.execute("INSERT INTO room_events_fts(room_events_fts) VALUES ('optimize')")
    db.execute("ANALYZE")
    db.close()


async def load_postgres(url: str, total: int, vocab: list[str]) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"))
    try:
        now = datetime.now(UTC)
        n_rooms = rooms_for(total)
        # Indexes are built once after the load, as a restore would (from their own
        # definitions, read back from the database).
        rebuild = [
            r["indexdef"]
            for r in await conn.fetch(
                "SELECT indexdef FROM pg_indexes WHERE indexname IN "
                "('ix_room_events_search', 'ix_room_events_ref')"
            )
        ]
        await conn.execute(
            "DROP INDEX ix_room_events_search; DROP INDEX ix_room_events_ref; "
            "ALTER TABLE room_events DROP CONSTRAINT uq_room_events_client_id"
        )
        await conn.copy_records_to_table(
            "rooms",
            columns=[
                "id",
                "room_id",
                "room_name",
                "room_type",
                "owner",
                "last_seq",
                "members_version",
                "created_at",
            ],
            records=[
                (r + 1, f"room{r}", f"room{r}", "shared", "owner", 0, 0, now)
                for r in range(n_rooms)
            ],
        )
        await conn.copy_records_to_table(
            "room_members",
            columns=["room_pk", "username", "joined_at", "delivered_seq", "read_seq"],
            records=[(r + 1, USER, now, 0, 0) for r in range(n_rooms) if r % 2 == 0]
            + [(r + 1, FEW, now, 0, 0) for r in FEW_ROOMS],
        )
        await conn.copy_records_to_table(
            "room_events",
            columns=["room_pk", "seq", "type", "data", "sender", "created_at"],
            records=(
                (room + 1, seq, "chat", chat_json(text, seq), f"u{seq % 50}", now)
                for room, seq, text in messages(total, vocab)
            ),
        )
        await conn.execute("SET maintenance_work_mem = '256MB'")
        for definition in rebuild:
            await conn.execute(definition)
        await conn.execute(
            "ALTER TABLE room_events ADD CONSTRAINT uq_room_events_client_id "
            "UNIQUE (room_pk, sender, client_message_id)"
        )
        await conn.execute(f"SELECT setval(pg_get_serial_sequence('rooms', 'id'), {n_rooms})")
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def measure(
    url: str, vocab: list[str], queries: int, total: int
) -> dict[str, tuple[float, float, float]]:
    store = SqlStore(url)
    small = f"room{2 * max(1, (rooms_for(total) - 1) // 4)}"  # a small room the user is in
    scopes = {
        "all rooms": (USER, None),
        "big room": (USER, "room0"),
        f"small room ({small})": (USER, small),
        "all rooms of a user in 3 small": (FEW, None),
    }
    out: dict[str, tuple[float, float, float]] = {}
    rng = random.Random(3)
    try:
        for kind, rank in KINDS.items():
            for scope, (user, room) in scopes.items():
                times, hits = [], []
                for i in range(queries):
                    # neighbours of the rank, so each query is a different word
                    word = vocab[min(len(vocab) - 1, rank - 1 + rng.randint(0, rank // 5 + 2))]
                    start = time.perf_counter()
                    found = await store.search.search(user, [word], room, None, PAGE)
                    times.append((time.perf_counter() - start) * 1000)
                    hits.append(len(found))
                    if i == 0:  # the first query of a cell also warms the cache
                        times.pop()
                out[f"{kind:<18} {scope}"] = (
                    statistics.median(times),
                    _p99(times),
                    statistics.mean(hits),
                )
    finally:
        await store.close()
    return out


def _p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def run_backend(
    backend: str, total: int, queries: int, tmp: Path, vocab: list[str]
) -> dict[str, tuple[float, float, float]]:
    if backend == "sqlite":
        path = tmp / "search.db"
        url = f"sqlite+aiosqlite:///{path}"
        store = SqlStore(url)
        await store.start()
        await store.close()
        started = time.perf_counter()
        load_sqlite(path, total, vocab)
        print(
            f"sqlite: loaded {total:,} messages in {time.perf_counter() - started:.0f} s, "
            f"{path.stat().st_size / 1e6:.0f} MB",
            flush=True,
        )
        return await measure(url, vocab, queries, total)
    import asyncpg

    name = f"chinwag_search_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    try:
        store = SqlStore(url)
        await store.start()
        await store.close()
        started = time.perf_counter()
        await load_postgres(url, total, vocab)
        print(
            f"postgres: loaded {total:,} messages in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        return await measure(url, vocab, queries, total)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=200, help="per cell")
    ap.add_argument("--backends", default="sqlite,postgres")
    args = ap.parse_args()
    vocab = words()
    tmp = Path(tempfile.mkdtemp(prefix="chinwag-search-"))
    results: dict[str, dict[str, tuple[float, float, float]]] = {}
    try:
        for backend in args.backends.split(","):
            results[backend] = await run_backend(backend, args.messages, args.queries, tmp, vocab)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\nsearch latency, ms ({args.messages:,} messages, {args.queries} queries per "
        f"cell, {PAGE} per page; hits = mean results returned)"
    )
    header = "".join(f" {b + ' p50':>12} {b + ' p99':>12} {'hits':>5}" for b in results)
    print(f"{'word / scope':<50}{header}")
    for cell in next(iter(results.values())):
        row = "".join(
            f" {r[cell][0]:>12.2f} {r[cell][1]:>12.2f} {r[cell][2]:>5.1f}" for r in results.values()
        )
        print(f"{cell:<50}{row}")


if __name__ == "__main__":
    asyncio.run(main())
