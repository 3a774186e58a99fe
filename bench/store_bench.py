"""Messages stored per second: chinwag's store path (seq assigned by the database in
one transaction) on SQLite and on PostgreSQL, one writer and several at once.

    python bench/store_bench.py            # 2000 events per cell, medians of 3
    python bench/store_bench.py --quick

Needs PostgreSQL on 127.0.0.1:5432 (user postgres) for the second column; it makes
and drops a throwaway database. Runs the real SqlStore, not a mock."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from chinwag.store.sql import SqlStore


async def one_cell(url: str, events: int, writers: int) -> float:
    store = SqlStore(url)
    await store.start()
    try:
        room = f"bench-{uuid.uuid4().hex[:8]}"
        await store.users.create(room + "-u", "x")
        await store.rooms.create(room, room, "shared", room + "-u")
        per = events // writers

        async def writer(w: int) -> None:
            for i in range(per):
                await store.events.append(room, "chat", {"content": f"m{i}"},
                                          sender=room + "-u", client_message_id=f"{w}-{i}",
                                          require_member=True)

        started = time.perf_counter()
        await asyncio.gather(*(writer(w) for w in range(writers)))
        elapsed = time.perf_counter() - started
        last = await store.events.after(room, per * writers - 1)
        assert [e.seq for e in last] == [per * writers], "seqs must be gapless"
        return per * writers / elapsed
    finally:
        await store.close()


async def postgres_url() -> tuple[str, str] | None:
    try:
        import asyncpg

        conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    except OSError:
        return None
    name = f"chinwag_bench_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}?ssl=disable", name


async def drop(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(host="127.0.0.1", user="postgres", database="postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    events, reps = (500, 1) if args.quick else (2000, 3)
    tmp = Path(tempfile.mkdtemp(prefix="chinwag-store-"))
    pg = await postgres_url()
    print(f"messages stored per second ({events} per cell, median of {reps})")
    print(f"{'writers':>8} {'SQLite':>10} {'PostgreSQL':>12}")
    try:
        for writers in (1, 8):
            row = []
            for url in (f"sqlite+aiosqlite:///{tmp / f'w{writers}.db'}", pg[0] if pg else None):
                if url is None:
                    row.append("n/a")
                    continue
                runs = [await one_cell(url, events, writers) for _ in range(reps)]
                row.append(f"{statistics.median(runs):,.0f}")
            print(f"{writers:>8} {row[0]:>10} {row[1]:>12}")
    finally:
        if pg:
            await drop(pg[1])


if __name__ == "__main__":
    asyncio.run(main())
