"""AI budget reservations: the worst case of every reply is held in the database
before its provider is called, so no number of processes can overdraw a budget.

The check and the insert run in one transaction that first takes a per-user lock:
``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` (the database's one
writer lock) on SQLite, where other processes may write the same file."""

from __future__ import annotations

import zlib
from datetime import datetime

from sqlalchemy import ColumnElement, and_, case, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chinwag.store.base import Budget, Claim, Refusal, Usage, Windows
from chinwag.store.sql.database import Database
from chinwag.store.sql.tables import AiReply

R = AiReply
# Spent in a window: a running (or orphaned) reply its reservation, a finished one its bill.
_TOKENS = func.coalesce(func.sum(case((R.running, R.reserved_tokens), else_=R.billed_tokens)), 0)
_USD = func.coalesce(func.sum(case((R.running, R.reserved_usd), else_=R.billed_usd)), 0.0)


def _live(now: datetime) -> ColumnElement[bool]:
    return and_(R.running, R.expires_at > now)


class SqlBudgets:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def reserve(
        self,
        claim: Claim,
        budget: Budget,
        max_running: int,
        windows: Windows,
        lease_until: datetime,
    ) -> int | Refusal:
        async with self._db.write_conn() as c:
            await self._lock(c, claim.username)
            refusal = await self._refusal(c, claim, budget, max_running, windows)
            if refusal is not None:
                return refusal
            result = await c.execute(
                insert(AiReply)
                .values(
                    username=claim.username,
                    conversation_id=claim.conversation_id,
                    node_id=claim.node_id,
                    running=True,
                    reserved_tokens=claim.tokens,
                    reserved_usd=claim.usd,
                    billed_tokens=0,
                    billed_usd=0.0,
                    created_at=windows.now,
                    expires_at=lease_until,
                )
                .returning(R.id)
            )
            return int(result.scalar_one())

    async def _lock(self, c: AsyncConnection, username: str) -> None:
        if self._db.is_sqlite:
            await c.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            key = zlib.crc32(b"chinwag-ai:" + username.encode()) - 2**31
            await c.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})

    async def _refusal(
        self, c: AsyncConnection, claim: Claim, budget: Budget, max_running: int, windows: Windows
    ) -> Refusal | None:
        mine = R.username == claim.username
        live = _live(windows.now)
        running = (await c.execute(select(func.count()).where(mine, live))).scalar_one()
        if running >= max_running:
            return "concurrency"
        if claim.conversation_id is not None:
            busy = await c.execute(
                select(R.id).where(R.conversation_id == claim.conversation_id, live).limit(1)
            )
            if busy.first() is not None:
                return "conversation"
        if budget.tokens_per_day is not None:
            spent = (
                await c.execute(select(_TOKENS).where(mine, R.created_at >= windows.day_start))
            ).scalar_one()
            if int(spent) + claim.tokens > budget.tokens_per_day:
                return "tokens"
        if budget.usd_per_month is not None:
            spent_usd = (
                await c.execute(select(_USD).where(mine, R.created_at >= windows.month_start))
            ).scalar_one()
            if float(spent_usd) + claim.usd > budget.usd_per_month + 1e-12:
                return "usd"
        return None

    async def attach(self, reply_id: int, conversation_id: int) -> None:
        async with self._db.write_conn() as c:
            await c.execute(
                update(AiReply).where(R.id == reply_id).values(conversation_id=conversation_id)
            )

    async def settle(self, reply_id: int, tokens: int, usd: float) -> None:
        async with self._db.write_conn() as c:
            await c.execute(
                update(AiReply)
                .where(R.id == reply_id)
                .values(
                    running=False,
                    billed_tokens=func.min(R.reserved_tokens, tokens)
                    if self._db.is_sqlite
                    else func.least(R.reserved_tokens, tokens),
                    billed_usd=func.min(R.reserved_usd, usd)
                    if self._db.is_sqlite
                    else func.least(R.reserved_usd, usd),
                )
            )

    async def extend(self, reply_ids: list[int], lease_until: datetime) -> None:
        if not reply_ids:
            return
        async with self._db.write_conn() as c:
            await c.execute(
                update(AiReply).where(R.id.in_(reply_ids), R.running).values(expires_at=lease_until)
            )

    async def running_in(self, conversation_id: int, now: datetime) -> tuple[str, str] | None:
        async with self._db.engine.connect() as c:
            row = (
                await c.execute(
                    select(R.username, R.node_id)
                    .where(R.conversation_id == conversation_id, _live(now))
                    .limit(1)
                )
            ).first()
            return (row[0], row[1]) if row else None

    async def usage(self, username: str, windows: Windows) -> Usage:
        mine = R.username == username
        async with self._db.engine.connect() as c:
            tokens = (
                await c.execute(select(_TOKENS).where(mine, R.created_at >= windows.day_start))
            ).scalar_one()
            usd = (
                await c.execute(select(_USD).where(mine, R.created_at >= windows.month_start))
            ).scalar_one()
            held = (
                await c.execute(
                    select(
                        func.count(),
                        func.coalesce(func.sum(R.reserved_tokens), 0),
                        func.coalesce(func.sum(R.reserved_usd), 0.0),
                    ).where(mine, _live(windows.now))
                )
            ).one()
        return Usage(
            int(tokens), round(float(usd), 8), int(held[1]), round(float(held[2]), 8), int(held[0])
        )
