"""Full-text search over chat content: SQLite FTS5, PostgreSQL tsvector + GIN.

The index (migration 0006) follows the stored content, so an edit re-indexes a
message and a deletion (which removes the content) takes it out. Matching is by
whole words, case-insensitive; newest first is id order, which is storage order."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from chinwag.store.base import EventRecord
from chinwag.store.sql.database import Database, stored_json, stored_time

_SELECT = ("SELECT e.id, r.room_id, e.seq, e.type, e.data, e.sender, e.client_message_id, "
           "e.created_at ")
_MEMBER = ("JOIN room_members m ON m.room_pk = e.room_pk AND m.username = :username "
           "JOIN rooms r ON r.id = e.room_pk ")

# FTS5 hands out its matches in rowid order, newest first here, so the join stops at
# the limit instead of reading every match.
_SQLITE = (_SELECT + "FROM room_events_fts f JOIN room_events e ON e.id = f.rowid " + _MEMBER
           + "WHERE room_events_fts MATCH :match {filters} ORDER BY f.rowid DESC LIMIT :limit")
_POSTGRES = (_SELECT + "FROM room_events e " + _MEMBER
             + "WHERE e.search_vector @@ plainto_tsquery('simple', :match) {filters} "
             "ORDER BY e.id DESC LIMIT :limit")


def fts5_query(words: list[str]) -> str:
    """Each word as an FTS5 string (its syntax never applies), all of them required."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in words)


class SqlSearch:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(self, username: str, words: list[str], room_id: str | None,
                     before_id: int | None, limit: int) -> list[EventRecord]:
        if not words:
            return []
        params: dict[str, Any] = {"username": username, "limit": limit}
        filters = ""
        if room_id is not None:
            filters += "AND r.room_id = :room_id "
            params["room_id"] = room_id
        if before_id is not None:
            filters += "AND e.id < :before_id "
            params["before_id"] = before_id
        if self._db.is_sqlite:
            sql, params["match"] = _SQLITE, fts5_query(words)
        else:
            sql, params["match"] = _POSTGRES, " ".join(words)
        async with self._db.read() as s:
            rows = (await s.execute(text(sql.format(filters=filters)), params)).all()
        return [EventRecord(id, room, seq, type, stored_json(data), sender, client_id,
                            stored_time(created))
                for id, room, seq, type, data, sender, client_id, created in rows]
