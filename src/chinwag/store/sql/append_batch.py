"""Many room appends in one transaction (the batch side of ``group_commit``).

Per room of the batch, in room-id order (so two processes lock rooms in the same
order): lock the room row, ask once which senders are members and which
(sender, client_message_id) pairs are stored already, then move ``last_seq`` by
the number of new events and insert them all in one statement. Each ask gets
its own answer: stored, a duplicate of what was stored before, or refused."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import aiosqlite
from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from chinwag.protocol.errors import NotFound, NotInRoom
from chinwag.store.base import Appended, EventRecord
from chinwag.store.sql.database import stored_json, stored_time
from chinwag.store.sql.tables import EVENT_RECORD_COLUMNS, Room, RoomEvent, RoomMember

Pair = tuple[str, str]  # (sender, client_message_id)


@dataclass(frozen=True, slots=True)
class AppendAsk:
    room_id: str
    type: str
    data: dict[str, Any]
    sender: str | None
    client_message_id: str | None
    require_member: bool
    at: datetime

    @property
    def pair(self) -> Pair | None:
        """The idempotency key, when there is one (NULLs never collide in SQL)."""
        if self.sender is None or self.client_message_id is None:
            return None
        return (self.sender, self.client_message_id)


class RoomWrites(Protocol):
    """The statements of one batch, on one transaction of one backend."""

    async def lock(self, room_id: str) -> tuple[int, int, int] | None:
        """(pk, last_seq, members_version) with the row locked; None: no such room."""

    async def members(self, pk: int, senders: set[str]) -> set[str]: ...

    async def stored(self, pk: int, room_id: str, pairs: set[Pair]) -> dict[Pair, EventRecord]: ...

    async def insert(self, pk: int, last_seq: int, rows: list[AppendAsk]) -> dict[int, int]:
        """Set the room's last_seq to ``last_seq + len(rows)`` and insert the rows with
        the seqs after ``last_seq``, in order; the new event ids by seq."""


async def append_batch(writes: RoomWrites, asks: list[AppendAsk]) -> list[Appended | Exception]:
    answers: list[Appended | Exception | None] = [None] * len(asks)
    by_room: dict[str, list[int]] = {}
    for i, ask in enumerate(asks):
        by_room.setdefault(ask.room_id, []).append(i)
    for room_id in sorted(by_room):
        await _append_room(writes, room_id, by_room[room_id], asks, answers)
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


async def _append_room(
    writes: RoomWrites,
    room_id: str,
    indexes: list[int],
    asks: list[AppendAsk],
    answers: list[Appended | Exception | None],
) -> None:
    locked = await writes.lock(room_id)
    if locked is None:
        for i in indexes:
            answers[i] = NotFound(f"room '{room_id}' does not exist")
        return
    pk, last_seq, version = locked
    checked = {asks[i].sender for i in indexes if asks[i].require_member and asks[i].sender}
    members = await writes.members(pk, checked) if checked else set()  # type: ignore[arg-type]
    pairs = {p for i in indexes if (p := asks[i].pair) is not None}
    before = await writes.stored(pk, room_id, pairs) if pairs else {}
    new: list[int] = []  # indexes of the asks that become events, in seq order
    first_of: dict[Pair, int] = {}  # a pair repeated inside the batch: its first ask
    repeats: list[tuple[int, int]] = []  # (ask, the earlier ask in this batch it repeats)
    for i in indexes:
        ask = asks[i]
        if ask.require_member and ask.sender and ask.sender not in members:
            answers[i] = NotInRoom.of(room_id)
        elif (pair := ask.pair) is not None and pair in before:
            answers[i] = Appended(before[pair], duplicate=True)
        elif pair is not None and pair in first_of:
            repeats.append((i, first_of[pair]))
        else:
            if pair is not None:
                first_of[pair] = i
            new.append(i)
    if not new:
        return
    ids = await writes.insert(pk, last_seq, [asks[i] for i in new])
    for n, i in enumerate(new):
        ask, seq = asks[i], last_seq + 1 + n
        record = EventRecord(
            ids[seq], room_id, seq, ask.type, ask.data, ask.sender, ask.client_message_id, ask.at
        )
        answers[i] = Appended(record, duplicate=False, members_version=version)
    for i, earlier in repeats:
        stored = answers[earlier]
        assert isinstance(stored, Appended)
        answers[i] = Appended(stored.event, duplicate=True)


def _naive_utc(at: datetime) -> str:
    """A time as SQLAlchemy stores it in SQLite (naive UTC text)."""
    return at.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SqliteWrites:
    """The batch on the SQLite append connection (plain aiosqlite, one thread hop per
    statement; the caller holds the write lock and commits)."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def lock(self, room_id: str) -> tuple[int, int, int] | None:
        # A no-op UPDATE takes SQLite's write lock (other processes on the same
        # file wait) and reads the row in the same step.
        rows = list(
            await self._conn.execute_fetchall(
                "UPDATE rooms SET last_seq = last_seq WHERE room_id = ? "
                "RETURNING id, last_seq, members_version",
                (room_id,),
            )
        )
        return (int(rows[0][0]), int(rows[0][1]), int(rows[0][2])) if rows else None

    async def members(self, pk: int, senders: set[str]) -> set[str]:
        rows = await self._conn.execute_fetchall(
            f"SELECT username FROM room_members WHERE room_pk = ? "
            f"AND username IN ({_marks(len(senders))})",
            (pk, *senders),
        )
        return {row[0] for row in rows}

    async def stored(self, pk: int, room_id: str, pairs: set[Pair]) -> dict[Pair, EventRecord]:
        # Two IN lists, not a row-value IN: SQLite walks the (room_pk, sender,
        # client_message_id) index with both; the pairs are picked out below.
        senders, ids = {s for s, _ in pairs}, {cid for _, cid in pairs}
        rows = await self._conn.execute_fetchall(
            "SELECT id, seq, type, data, sender, client_message_id, created_at "
            f"FROM room_events WHERE room_pk = ? AND sender IN ({_marks(len(senders))}) "
            f"AND client_message_id IN ({_marks(len(ids))})",
            (pk, *senders, *ids),
        )
        return _by_pair(rows, room_id, pairs)

    async def insert(self, pk: int, last_seq: int, rows: list[AppendAsk]) -> dict[int, int]:
        await self._conn.execute(
            "UPDATE rooms SET last_seq = ? WHERE id = ?", (last_seq + len(rows), pk)
        )
        values: list[Any] = []
        for n, ask in enumerate(rows):
            values += (
                pk,
                last_seq + 1 + n,
                ask.type,
                json.dumps(ask.data),
                ask.sender,
                ask.client_message_id,
                _naive_utc(ask.at),
            )
        inserted = await self._conn.execute_fetchall(
            "INSERT INTO room_events (room_pk, seq, type, data, sender, client_message_id, "
            "created_at) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows)) + " "
            "RETURNING id, seq",
            values,
        )
        return {int(seq): int(id) for id, seq in inserted}


class PostgresWrites:
    """The batch on a SQLAlchemy Core transaction (PostgreSQL)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def lock(self, room_id: str) -> tuple[int, int, int] | None:
        row = (
            await self._conn.execute(
                select(Room.id, Room.last_seq, Room.members_version)
                .where(Room.room_id == room_id)
                .with_for_update()
            )
        ).first()
        return (row[0], row[1], row[2]) if row else None

    async def members(self, pk: int, senders: set[str]) -> set[str]:
        rows = await self._conn.execute(
            select(RoomMember.username).where(
                RoomMember.room_pk == pk, RoomMember.username.in_(senders)
            )
        )
        return set(rows.scalars())

    async def stored(self, pk: int, room_id: str, pairs: set[Pair]) -> dict[Pair, EventRecord]:
        rows = await self._conn.execute(
            select(*EVENT_RECORD_COLUMNS).where(
                RoomEvent.room_pk == pk,
                tuple_(RoomEvent.sender, RoomEvent.client_message_id).in_(list(pairs)),
            )
        )
        return _by_pair(rows.all(), room_id, pairs)

    async def insert(self, pk: int, last_seq: int, rows: list[AppendAsk]) -> dict[int, int]:
        await self._conn.execute(
            update(Room).where(Room.id == pk).values(last_seq=last_seq + len(rows))
        )
        inserted = await self._conn.execute(
            insert(RoomEvent).returning(RoomEvent.id, RoomEvent.seq),
            [
                {
                    "room_pk": pk,
                    "seq": last_seq + 1 + n,
                    "type": ask.type,
                    "data": ask.data,
                    "sender": ask.sender,
                    "client_message_id": ask.client_message_id,
                    "created_at": ask.at,
                }
                for n, ask in enumerate(rows)
            ],
        )
        return {seq: id for id, seq in inserted.all()}


def _by_pair(rows: Iterable[Any], room_id: str, pairs: set[Pair]) -> dict[Pair, EventRecord]:
    found: dict[Pair, EventRecord] = {}
    for id, seq, type, data, sender, client_id, created in rows:
        if (sender, client_id) in pairs:
            found[(sender, client_id)] = EventRecord(
                id, room_id, seq, type, stored_json(data), sender, client_id, stored_time(created)
            )
    return found
