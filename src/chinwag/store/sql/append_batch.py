"""Room appends as plain SQL on each backend's append connection: one alone
(``SqliteWrites.append_one``), or many in one transaction (the batch side of
``group_commit``).

SQLite, on its writer thread (one thread hop for the whole batch): per room of the
batch, in room-id order, lock the room row, ask once which senders are members and
which (sender, client_message_id) pairs are stored already, then move ``last_seq``
by the number of new events and insert them all in one statement
(``append_batch_now``, ``SqliteWrites``).

PostgreSQL (a batch is one room: its lane): the same decisions made by the database
in one statement, ``_PG_APPEND``, so a batch is one round trip and one commit
(``append_postgres``); a lone append is a shorter one (``append_one_postgres``).

Each ask gets its own answer: stored, a duplicate of what was stored before, or
refused."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

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


Answers = list[Appended | Exception]


def append_batch_now(writes: SqliteWrites, asks: list[AppendAsk]) -> Answers:
    """The batch on SQLite's writer thread: every statement in one thread hop."""
    answers: list[Appended | Exception | None] = [None] * len(asks)
    by_room: dict[str, list[int]] = {}
    for i, ask in enumerate(asks):
        by_room.setdefault(ask.room_id, []).append(i)
    for room_id in sorted(by_room):
        _room(writes, room_id, by_room[room_id], asks, answers)
    assert all(a is not None for a in answers)
    return answers  # type: ignore[return-value]


def _room(
    writes: SqliteWrites,
    room_id: str,
    indexes: list[int],
    asks: list[AppendAsk],
    answers: list[Appended | Exception | None],
) -> None:
    checked = {s for i in indexes if asks[i].require_member and (s := asks[i].sender)}
    pairs = {p for i in indexes if (p := asks[i].pair) is not None}
    room = writes.read(room_id, checked, pairs)
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
    ids = writes.insert(pk, last_seq, [asks[i] for i in new])
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


def _member_check(ask: AppendAsk, param: str) -> str:
    """The clause a lone append's seq bump adds when its sender must be a member
    (``param``: the placeholder of the sender), or nothing."""
    if not (ask.require_member and ask.sender):
        return ""
    return (
        " AND EXISTS (SELECT 1 FROM room_members m WHERE m.room_pk = rooms.id "
        f"AND m.username = {param})"
    )


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SqliteWrites:
    """The batch's statements on SQLite's writer thread (``Database.sqlite_write``):
    plain SQL through ``run``; the caller holds the write lock and commits."""

    def __init__(self, run: Run) -> None:
        self._run = run

    def append_one(self, ask: AppendAsk) -> Bumped | None:
        sender = ask.sender
        member = _member_check(ask, "?")
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


async def append_one_postgres(conn: asyncpg.Connection, ask: AppendAsk) -> Bumped | None:
    """An append alone on PostgreSQL, one statement in autocommit: the UPDATE that
    bumps the room's seq (and takes its row lock) feeds the INSERT. None when no room
    row was bumped (no such room, or the sender is not a member); a repeated
    (sender, client_message_id) raises on the unique constraint, having stored
    nothing. For one row this costs less than ``_PG_APPEND``'s planning and CTEs."""
    member = _member_check(ask, "$4")  # $4: the sender, also inserted
    row = await conn.fetchrow(
        "WITH bump AS (UPDATE rooms SET last_seq = last_seq + 1 "
        f"WHERE room_id = $1{member} RETURNING id, last_seq, members_version) "
        "INSERT INTO room_events (room_pk, seq, type, data, sender, client_message_id, "
        "created_at) SELECT id, last_seq, $2, $3::json, $4, $5, $6 FROM bump "
        "RETURNING room_pk, seq, (SELECT members_version FROM bump), id",
        ask.room_id,
        ask.type,
        json.dumps(ask.data),
        ask.sender,
        ask.client_message_id,
        ask.at,
    )
    if row is None:
        return None
    pk, seq, version, event_id = row
    return int(pk), int(seq), int(version), int(event_id)


#: A PostgreSQL room's batch of appends as one statement (autocommit: one round
#: trip and one commit, where BEGIN, a read, the insert and COMMIT cost four).
#: ``r`` locks the room's row; ``d`` decides each ask (``refused``: a sender who
#: must be a member is not; ``again``: it repeats the (sender, client_message_id)
#: of an earlier ask of this batch); ``acc`` numbers the others after the room's
#: last_seq, in the asks' order; the room's last_seq moves by their count and they
#: are inserted. One row per ask, in order (none when the room does not exist). A
#: pair stored before is not looked up (on a young table the planner walks the
#: room's events for it): the insert fails on its unique constraint, the statement
#: changes nothing, and the asks are retried one by one, where ``SqlEvents`` finds
#: the stored event. A client's resend is rare; every batch would pay the lookup.
_PG_APPEND = """
WITH r AS (
    SELECT id, last_seq, members_version FROM rooms WHERE room_id = $1 FOR UPDATE
), a AS (
    SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[],
                         $6::timestamptz[], $7::bool[])
        WITH ORDINALITY AS u(type, data, sender, cid, at, checked, ord)
), d AS (
    SELECT a.*,
        a.checked AND a.sender IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM room_members m WHERE m.room_pk = r.id AND m.username = a.sender
        ) AS refused,
        a.sender IS NOT NULL AND a.cid IS NOT NULL AND row_number() OVER (
            PARTITION BY a.sender, a.cid ORDER BY a.ord
        ) > 1 AS again
    FROM a CROSS JOIN r
), acc AS (
    SELECT d.ord, d.type, d.data, d.sender, d.cid, d.at,
        (SELECT last_seq FROM r) + row_number() OVER (ORDER BY d.ord) AS seq
    FROM d WHERE NOT d.refused AND NOT d.again
), bump AS (
    UPDATE rooms SET last_seq = (SELECT last_seq FROM r) + (SELECT count(*) FROM acc)
    WHERE id = (SELECT id FROM r) AND EXISTS (SELECT 1 FROM acc)
), ins AS (
    INSERT INTO room_events (room_pk, seq, type, data, sender, client_message_id, created_at)
    SELECT (SELECT id FROM r), acc.seq, acc.type, acc.data::json, acc.sender, acc.cid, acc.at
    FROM acc
    RETURNING id, seq
)
SELECT d.refused, acc.seq, ins.id, r.members_version
FROM d CROSS JOIN r
LEFT JOIN acc ON acc.ord = d.ord
LEFT JOIN ins ON ins.seq = acc.seq
ORDER BY d.ord
"""


async def append_postgres(conn: asyncpg.Connection, room_id: str, asks: list[AppendAsk]) -> Answers:
    """One room's appends on PostgreSQL, decided and written by one statement
    (``_PG_APPEND``); each ask gets its own answer, as on SQLite. Raises
    ``asyncpg.UniqueViolationError``, having stored nothing, when an ask repeats a
    stored (sender, client_message_id)."""
    rows = await conn.fetch(
        _PG_APPEND,
        room_id,
        [ask.type for ask in asks],
        [json.dumps(ask.data) for ask in asks],
        [ask.sender for ask in asks],
        [ask.client_message_id for ask in asks],
        [ask.at for ask in asks],
        [ask.require_member for ask in asks],
    )
    if not rows:
        return [NotFound(f"room '{room_id}' does not exist") for _ in asks]
    answers: Answers = []
    first_of: dict[Pair, Appended] = {}
    for ask, (refused, seq, id, version) in zip(asks, rows, strict=True):
        pair = ask.pair
        if refused:
            answers.append(NotInRoom.of(room_id))
        elif seq is None:  # repeats an earlier ask of this batch
            assert pair is not None
            answers.append(Appended(first_of[pair].event, duplicate=True))
        else:
            record = EventRecord(
                id, room_id, seq, ask.type, ask.data, ask.sender, ask.client_message_id, ask.at
            )
            answer = Appended(record, duplicate=False, members_version=version)
            if pair is not None:
                first_of[pair] = answer
            answers.append(answer)
    return answers


def _by_pair(rows: Iterable[Any], room_id: str, pairs: set[Pair]) -> dict[Pair, EventRecord]:
    found: dict[Pair, EventRecord] = {}
    for id, seq, type, data, sender, client_id, created in rows:
        if (sender, client_id) in pairs:
            found[(sender, client_id)] = EventRecord(
                id, room_id, seq, type, stored_json(data), sender, client_id, stored_time(created)
            )
    return found
