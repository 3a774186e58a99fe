"""Full-text search over chat content: SQLite FTS5, PostgreSQL tsvector + GIN.

The index (migration 0006) follows the stored content, so an edit re-indexes a
message and a deletion (which removes the content) takes it out. Matching is by
whole words, case-insensitive; newest first is id order, which is storage order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from chinwag.store.base import EventRecord
from chinwag.store.sql.database import Database, stored_json, stored_time

_SELECT = (
    "SELECT e.id, r.room_id, e.seq, e.type, e.data, e.sender, e.client_message_id, e.created_at "
)
# Membership, and the room's history visibility: in a "joined" room a member finds
# only what was said since they joined (core/visibility.py).
_MEMBER = (
    "JOIN room_members m ON m.room_pk = e.room_pk AND m.username = :username "
    "JOIN rooms r ON r.id = e.room_pk "
    "AND (r.history_visibility <> 'joined' OR e.seq > m.joined_seq) "
)

# FTS5 hands out its matches in rowid order, newest first here, so the join stops at
# the limit instead of reading every match.
_SQLITE = (
    _SELECT
    + "FROM room_events_fts f JOIN room_events e ON e.id = f.rowid "
    + _MEMBER
    + "WHERE room_events_fts MATCH :match {filters} ORDER BY f.rowid DESC LIMIT :limit"
)
_ROOM_PKS = "SELECT room_pk FROM room_members WHERE username = :username"
_ROOM_PK = (
    "SELECT r.id FROM rooms r JOIN room_members m ON m.room_pk = r.id "
    "AND m.username = :username WHERE r.room_id = :room_id"
)
_POSTGRES = (
    _SELECT
    + "FROM room_events e "
    + _MEMBER
    + "WHERE e.search_vector @@ plainto_tsquery('simple', :match) {filters} "
    "ORDER BY e.id DESC LIMIT :limit"
)
# Within one room, seq order is id order. Given the room's key as a value (and a
# plan made for these values, not a generic one), the planner weighs the word's
# frequency against the room's size: the GIN index for a rare word, or walking the
# room's (room_pk, seq) index backwards until the page is full for a common one.
_POSTGRES_ROOM = (
    _SELECT + "FROM room_events e " + _MEMBER + "WHERE e.room_pk = :room_pk "
    "AND e.search_vector @@ plainto_tsquery('simple', :match) {filters} "
    "ORDER BY e.seq DESC LIMIT :limit"
)


# Up to this many rooms, an all-rooms search also names them in the FTS5 query, so
# the index (not the join) narrows the matches down to the user's rooms.
ROOMS_IN_QUERY = 200


def fts5_query(words: list[str], room_pks: list[int] | None = None) -> str:
    """Each word as an FTS5 string (its syntax never applies), all of them required,
    in the content column; with ``room_pks``, in one of those rooms."""
    query = "content : (" + " ".join('"' + w.replace('"', '""') + '"' for w in words) + ")"
    if room_pks:
        query += " AND room : (" + " OR ".join(f'"r{pk}"' for pk in room_pks) + ")"
    return query


class SqlSearch:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(
        self,
        username: str,
        words: list[str],
        room_id: str | None,
        before_id: int | None,
        limit: int,
    ) -> list[EventRecord]:
        if not words:
            return []
        params: dict[str, Any] = {
            "username": username,
            "room_id": room_id,
            "before_id": before_id,
            "limit": limit,
        }
        filters = "AND e.id < :before_id " if before_id is not None else ""
        async with self._db.read() as s:
            pks = [
                pk
                for (pk,) in await s.execute(
                    text(_ROOM_PKS if room_id is None else _ROOM_PK), params
                )
            ]
            if not pks:
                return []  # not a member of any room (or of that one)
            if self._db.is_sqlite:
                sql = _SQLITE
                params["match"] = fts5_query(words, pks if len(pks) <= ROOMS_IN_QUERY else None)
                if room_id is not None:
                    filters += "AND r.room_id = :room_id "
            else:
                await s.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
                sql = _POSTGRES if room_id is None else _POSTGRES_ROOM
                params.update(match=" ".join(words), room_pk=pks[0])
            rows = (await s.execute(text(sql.format(filters=filters)), params)).all()
        return [
            EventRecord(
                id, room, seq, type, stored_json(data), sender, client_id, stored_time(created)
            )
            for id, room, seq, type, data, sender, client_id, created in rows
        ]
