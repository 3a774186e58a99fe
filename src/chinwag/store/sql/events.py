from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import asyncpg
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from chinwag.protocol.errors import ChatError, NotFound, NotInRoom
from chinwag.store.base import Appended, EventRecord
from chinwag.store.sql.append_batch import (
    AppendAsk,
    SqliteWrites,
    append_batch_now,
    append_one_postgres,
    append_postgres,
)
from chinwag.store.sql.database import Database, stored_json, stored_time
from chinwag.store.sql.group_commit import GroupCommit
from chinwag.store.sql.tables import EVENT_RECORD_COLUMNS, Room, RoomEvent

_AFTER = (
    select(*EVENT_RECORD_COLUMNS)
    .join(Room, RoomEvent.room_pk == Room.id)
    .where(Room.room_id == bindparam("room_id"), RoomEvent.seq > bindparam("after_seq"))
    .order_by(RoomEvent.seq)
    .limit(bindparam("limit"))
)

_ROOM_EXISTS = select(Room.id).where(Room.room_id == bindparam("room_id"))


def _record(row: RoomEvent, room_id: str) -> EventRecord:
    return EventRecord(
        row.id,
        room_id,
        row.seq,
        row.type,
        dict(row.data),
        row.sender,
        row.client_message_id,
        row.created_at,
    )


class SqlEvents:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._group: GroupCommit[AppendAsk, Appended] = GroupCommit(
            self._append_one, self._append_batch
        )

    async def append(
        self,
        room_id: str,
        type: str,
        data: dict[str, Any],
        *,
        sender: str | None = None,
        client_message_id: str | None = None,
        require_member: bool = False,
    ) -> Appended:
        ask = AppendAsk(
            room_id, type, data, sender, client_message_id, require_member, datetime.now(UTC)
        )
        # SQLite has one writer: one lane. PostgreSQL orders a room's appends by its
        # row lock: a lane per room, so rooms commit side by side.
        return await self._group.submit(None if self._db.is_sqlite else room_id, ask)

    async def _append_batch(self, asks: list[AppendAsk]) -> list[Appended | Exception]:
        if self._db.is_sqlite:
            return await self._db.sqlite_write(
                lambda run: append_batch_now(SqliteWrites(run), asks)
            )
        room_id = asks[0].room_id  # a PostgreSQL lane is one room
        return await self._db.pg_write(lambda conn: append_postgres(conn, room_id, asks))

    async def _append_one(self, ask: AppendAsk) -> Appended:
        # An append alone (SQLite: two statements in one transaction; PostgreSQL: one
        # statement). The seq bump takes the room row's lock, which orders concurrent
        # writers, so seqs come out gapless and commit in seq order, whichever
        # process writes.
        try:
            if self._db.is_sqlite:
                bumped = await self._db.sqlite_write(lambda run: SqliteWrites(run).append_one(ask))
            else:
                bumped = await self._db.pg_write(lambda conn: append_one_postgres(conn, ask))
        except (sqlite3.IntegrityError, IntegrityError, asyncpg.UniqueViolationError):
            # The pair is stored already (the seq's bump was rolled back with it).
            prior = await self.find(ask.room_id, ask.sender or "", ask.client_message_id or "")
            if prior is None:  # the constraint fired for another reason: surface it
                raise
            return Appended(prior, duplicate=True)
        if bumped is None:
            raise await self._refusal(ask.room_id)
        _, seq, version, event_id = bumped
        a = ask
        record = EventRecord(
            event_id, a.room_id, seq, a.type, a.data, a.sender, a.client_message_id, a.at
        )
        return Appended(record, duplicate=False, members_version=version)

    async def _refusal(self, room_id: str) -> ChatError:
        """Why an append found no room row to bump (asked after the UPDATE matched
        nothing, so there is nothing of this transaction to see)."""
        if not await self._db.rows(_ROOM_EXISTS, {"room_id": room_id}):
            return NotFound(f"room '{room_id}' does not exist")
        return NotInRoom.of(room_id)

    async def find(self, room_id: str, sender: str, client_message_id: str) -> EventRecord | None:
        async with self._db.read() as s:
            row = await s.scalar(
                select(RoomEvent)
                .join(Room)
                .where(
                    Room.room_id == room_id,
                    RoomEvent.sender == sender,
                    RoomEvent.client_message_id == client_message_id,
                )
            )
            return _record(row, room_id) if row else None

    async def after(self, room_id: str, after_seq: int, limit: int = 1000) -> list[EventRecord]:
        # Every connect reads this once per room of the user: kept cheap.
        rows = await self._db.rows(
            _AFTER, {"room_id": room_id, "after_seq": after_seq, "limit": limit}
        )
        return [
            EventRecord(
                id, room_id, seq, type, stored_json(data), sender, client_id, stored_time(created)
            )
            for id, seq, type, data, sender, client_id, created in rows
        ]

    async def before(
        self, room_id: str, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> list[EventRecord]:
        async with self._db.read() as s:
            query = (
                select(RoomEvent)
                .join(Room)
                .where(Room.room_id == room_id, RoomEvent.seq > after_seq)
            )
            if before_seq is not None:
                query = query.where(RoomEvent.seq < before_seq)
            rows = await s.scalars(query.order_by(RoomEvent.seq.desc()).limit(limit))
            return [_record(r, room_id) for r in reversed(list(rows))]

    async def chats_between(
        self, room_id: str, after_seq: int, upto_seq: int, exclude_sender: str
    ) -> list[EventRecord]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(RoomEvent)
                .join(Room)
                .where(
                    Room.room_id == room_id,
                    RoomEvent.seq > after_seq,
                    RoomEvent.seq <= upto_seq,
                    RoomEvent.type == "chat",
                    RoomEvent.sender.is_not(None),
                    RoomEvent.sender != exclude_sender,
                )
                .order_by(RoomEvent.seq)
            )
            return [_record(r, room_id) for r in rows]

    async def count(self) -> int:
        async with self._db.read() as s:
            return int(await s.scalar(select(func.count()).select_from(RoomEvent)) or 0)
