"""Throw-away PostgreSQL databases for the multi-process benchmarks (127.0.0.1:5432,
user postgres): used by measure.py (--workers targets) and cluster_bench.py."""

from __future__ import annotations

import uuid

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


async def create_database() -> str:
    import asyncpg

    name = f"chinwag_bench_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(database="postgres", **PG)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_database(name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(database="postgres", **PG)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
