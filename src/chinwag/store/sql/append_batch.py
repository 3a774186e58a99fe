"""Room appends as plain SQL on each backend's append connection: one alone
(``append_one``), or many in one transaction (the batch side of ``group_commit``).

Per room of the batch, in room-id order (so two processes lock rooms in the same
order): lock the room row, ask once which senders are members and which
(sender, client_message_id) pairs are stored already, then move ``last_seq`` by
the number of new events and insert them all in one statement. Each ask gets
its own answer: stored, a duplicate of what was stored before, or refused.

The steps are written once, as a generator that yields each statement it needs and
takes its result back (``_batch``); ``append_batch`` runs them on an async
connection (PostgreSQL), ``append_batch_now`` on SQLite's writer thread, where the
whole batch is one thread hop."""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from chinwag.protocol.errors import NotFound, NotInRoom
from chinwag.store.base import Appended, EventRecord
from chinwag.store.sql.database import Run, naive_utc, stored_json, stored_time

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


#: An append alone: (room pk, its seq, the room's members_version, the event's id).
Bumped = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class LockedRoom:
    """A batch's room, its row locked: what its appends are decided on."""

    pk: int
    last_seq: int
    members_version: int
    members: set[str]  # of the senders asked about
    stored: dict[Pair, EventRecord]  # of the pairs asked about


class RoomWrites(Protocol):
    """The statements of one batch, on one transaction (PostgresWrites; SqliteWrites
    has the same methods, plain, for SQLite's writer thread)."""

    async def append_one(self, ask: AppendAsk) -> Bumped | None:
        """One append (a UPDATE that bumps the room's seq, then the INSERT); None when
        no room row was bumped (no such room, or the sender is not a member)."""

    async def read(self, room_id: str, senders: set[str], pairs: set[Pair]) -> LockedRoom | None:
        """Lock the room's row and read what the batch decides on: which of
        ``senders`` are members, which of ``pairs`` are stored; None: no such room."""

    async def insert(self, pk: int, last_seq: int, rows: list[AppendAsk]) -> dict[int, int]:
        """Set the room's last_seq to ``last_seq + len(rows)`` and insert the rows with
        the seqs after ``last_seq``, in order; the new event ids by seq."""


Step = tuple[str, tuple[Any, ...]]  # a RoomWrites method's name and its arguments
Answers = list[Appended | Exception]


async def append_batch(writes: RoomWrites, asks: list[AppendAsk]) -> Answers:
    """The batch on an async connection (PostgreSQL): one await per statement."""
    steps = _batch(asks)
    result: Any = None
    try:
        while True:
            name, args = steps.send(result)
            result = await getattr(writes, name)(*args)
    except StopIteration as done:
        answers: Answers = done.value
        return answers


def append_batch_now(writes: SqliteWrites, asks: list[AppendAsk]) -> Answers:
    """The batch on SQLite's writer thread: every statement in one thread hop."""
    steps = _batch(asks)
    result: Any = None
    try:
        while True:
            name, args = steps.send(result)
            result = getattr(writes, name)(*args)
    except StopIteration as done:
        answers: Answers = done.value
        return answers


def _batch(asks: list[AppendAsk]) -> Generator[Step, Any, Answers]:
    """The statements of a batch, each yielded for the runner to execute and send
    its result back (written once for both runners)."""
    answers: list[Appended | Exception | None] = [None] * len(asks)
    by_room: dict[str, list[int]] = {}
    for i, ask in enumerate(asks):
        by_room.setdefault(ask.room_id, []).append(i)
    for room_id in sorted(by_room):
        yield from _room(room_id, by_room[room_id], asks, answers)
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def _room(
    room_id: str,
    indexes: list[int],
    asks: list[AppendAsk],
    answers: list[Appended | Exception | None],
) -> Generator[Step, Any, None]:
    checked = {s for i in indexes if asks[i].require_member and (s := asks[i].sender)}
    pairs = {p for i in indexes if (p := asks[i].pair) is not None}
    room: LockedRoom | None = yield ("read", (room_id, checked, pairs))
    if room is None:
        for i in indexes:
            answers[i] = NotFound(f"room '{room_id}' does not exist")
        return
    pk, last_seq, version = room.pk, room.last_seq, room.members_version
    members, before = room.members, room.stored
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
    ids = yield ("insert", (pk, last_seq, [asks[i] for i in new]))
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


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SqliteWrites:
    """The batch's statements on SQLite's writer thread (``Database.sqlite_write``):
    plain SQL through ``run``; the caller holds the write lock and commits."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def append_one(self, ask: AppendAsk) -> Bumped | None:
        sender = ask.sender
        member = (
            " AND EXISTS (SELECT 1 FROM room_members WHERE room_members.room_pk = "
            "rooms.id AND room_members.username = ?)"
            if ask.require_member and sender
            else ""
        )
        rows = self._run(
            f"UPDATE rooms SET last_seq = last_seq + 1 WHERE rooms.room_id = ?{member} "
            "RETURNING id, last_seq, members_version",
            (ask.room_id, sender) if member else (ask.room_id,),
        )
        if not rows:
            return None
        pk, seq, version = rows[0]
        inserted = self._run(
            "INSERT INTO room_events (room_pk, seq, type, data, sender, "
            "client_message_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                pk,
                seq,
                ask.type,
                json.dumps(ask.data),
                sender,
                ask.client_message_id,
                naive_utc(ask.at),
            ),
        )
        return int(pk), int(seq), int(version), int(inserted[0][0])

    def read(self, room_id: str, senders: set[str], pairs: set[Pair]) -> LockedRoom | None:
        # A no-op UPDATE takes SQLite's write lock (other processes on the same
        # file wait) and reads the row in the same step.
        rows = self._run(
            "UPDATE rooms SET last_seq = last_seq WHERE room_id = ? "
            "RETURNING id, last_seq, members_version",
            (room_id,),
        )
        if not rows:
            return None
        pk, last_seq, version = (int(v) for v in rows[0])
        members = set()
        if senders:
            found = self._run(
                f"SELECT username FROM room_members WHERE room_pk = ? "
                f"AND username IN ({_marks(len(senders))})",
                (pk, *senders),
            )
            members = {row[0] for row in found}
        stored = {}
        if pairs:
            # Two IN lists, not a row-value IN: SQLite walks the (room_pk, sender,
            # client_message_id) index with both; the pairs are picked out below.
            names, ids = {s for s, _ in pairs}, {cid for _, cid in pairs}
            found = self._run(
                "SELECT id, seq, type, data, sender, client_message_id, created_at "
                f"FROM room_events WHERE room_pk = ? AND sender IN ({_marks(len(names))}) "
                f"AND client_message_id IN ({_marks(len(ids))})",
                (pk, *names, *ids),
            )
            stored = _by_pair(found, room_id, pairs)
        return LockedRoom(pk, last_seq, version, members, stored)

    def insert(self, pk: int, last_seq: int, rows: list[AppendAsk]) -> dict[int, int]:
        self._run("UPDATE rooms SET last_seq = ? WHERE id = ?", (last_seq + len(rows), pk))
        values: list[Any] = []
        for n, ask in enumerate(rows):
            values += (
                pk,
                last_seq + 1 + n,
                ask.type,
                json.dumps(ask.data),
                ask.sender,
                ask.client_message_id,
                naive_utc(ask.at),
            )
        inserted = self._run(
            "INSERT INTO room_events (room_pk, seq, type, data, sender, client_message_id, "
            "created_at) VALUES " + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows)) + " "
            "RETURNING id, seq",
            values,
        )
        return {int(seq): int(id) for id, seq in inserted}


class PostgresWrites:
    """The batch's statements on an asyncpg connection in a transaction
    (``Database.pg_write``), as plain SQL with array parameters."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self._conn = conn

    async def append_one(self, ask: AppendAsk) -> Bumped | None:
        sender = ask.sender
        member = (
            " AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_pk = rooms.id "
            "AND m.username = $2)"
            if ask.require_member and sender
            else ""
        )
        row = await self._conn.fetchrow(
            f"UPDATE rooms SET last_seq = last_seq + 1 WHERE room_id = $1{member} "
            "RETURNING id, last_seq, members_version",
            *((ask.room_id, sender) if member else (ask.room_id,)),
        )
        if row is None:
            return None
        pk, seq, version = row
        event_id = await self._conn.fetchval(
            "INSERT INTO room_events (room_pk, seq, type, data, sender, client_message_id, "
            "created_at) VALUES ($1, $2, $3, $4::json, $5, $6, $7) RETURNING id",
            pk,
            seq,
            ask.type,
            json.dumps(ask.data),
            sender,
            ask.client_message_id,
            ask.at,
        )
        return int(pk), int(seq), int(version), int(event_id)

    async def read(self, room_id: str, senders: set[str], pairs: set[Pair]) -> LockedRoom | None:
        # One round trip: the row locked, the members among the senders, the ids of
        # the pairs stored already (those are read in full only when there are any).
        listed = list(pairs)
        row = await self._conn.fetchrow(
            "WITH r AS (SELECT id, last_seq, members_version FROM rooms "
            "WHERE room_id = $1 FOR UPDATE) "
            "SELECT r.id, r.last_seq, r.members_version, "
            "ARRAY(SELECT m.username FROM room_members m WHERE m.room_pk = r.id "
            "AND m.username = ANY($2::text[])), "
            "ARRAY(SELECT e.id FROM room_events e "
            "JOIN unnest($3::text[], $4::text[]) AS p(sender, cid) "
            "ON e.sender = p.sender AND e.client_message_id = p.cid WHERE e.room_pk = r.id) "
            "FROM r",
            room_id,
            list(senders),
            [sender for sender, _ in listed],
            [cid for _, cid in listed],
        )
        if row is None:
            return None
        pk, last_seq, version, members, stored_ids = row
        stored = {}
        if stored_ids:
            found = await self._conn.fetch(
                "SELECT id, seq, type, data, sender, client_message_id, created_at "
                "FROM room_events WHERE id = ANY($1::bigint[])",
                stored_ids,
            )
            stored = _by_pair(found, room_id, pairs)
        return LockedRoom(int(pk), int(last_seq), int(version), set(members), stored)

    async def insert(self, pk: int, last_seq: int, rows: list[AppendAsk]) -> dict[int, int]:
        # The room's new last_seq and the events in one statement (a data-modifying
        # CTE runs whether or not the INSERT reads it).
        inserted = await self._conn.fetch(
            "WITH bump AS (UPDATE rooms SET last_seq = $2 WHERE id = $1) "
            "INSERT INTO room_events (room_pk, seq, type, data, sender, client_message_id, "
            "created_at) SELECT $1, u.seq, u.type, u.data::json, u.sender, u.cid, u.at "
            "FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], "
            "$8::timestamptz[]) AS u(seq, type, data, sender, cid, at) RETURNING id, seq",
            pk,
            last_seq + len(rows),
            [last_seq + 1 + n for n in range(len(rows))],
            [ask.type for ask in rows],
            [json.dumps(ask.data) for ask in rows],
            [ask.sender for ask in rows],
            [ask.client_message_id for ask in rows],
            [ask.at for ask in rows],
        )
        return {int(seq): int(id) for id, seq in inserted}


def _by_pair(rows: Iterable[Any], room_id: str, pairs: set[Pair]) -> dict[Pair, EventRecord]:
    found: dict[Pair, EventRecord] = {}
    for id, seq, type, data, sender, client_id, created in rows:
        if (sender, client_id) in pairs:
            found[(sender, client_id)] = EventRecord(
                id, room_id, seq, type, stored_json(data), sender, client_id, stored_time(created)
            )
    return found
