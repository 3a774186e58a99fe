"""Messages people act on: edits, deletions and reactions rewrite the stored chat and
append an event recording the change, in one transaction; replies and mentions.

Lock order, the same as every append's: the message row (``FOR NO KEY UPDATE``, which
the foreign-key checks of concurrent inserts do not wait for), then the room row
whose ``last_seq`` gives the new event its seq."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, insert, literal_column, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from chinwag.protocol.errors import NotFound
from chinwag.store.base import EventRecord, conversation_title
from chinwag.store.messages import Changed, MentionRecord, NewEvent, Rewrite
from chinwag.store.sql.database import Database
from chinwag.store.sql.events import _record
from chinwag.store.sql.tables import (
    EVENT_RECORD_COLUMNS,
    Conversation,
    ConversationTurn,
    MessageMention,
    Room,
    RoomEvent,
    RoomMember,
)

# The expression of the index ix_room_events_ref (migration 0006), written exactly as
# there so that the planners use the index.
_REF_SQLITE = (
    "coalesce(json_extract(room_events.data, '$.message_id'), "
    "json_extract(room_events.data, '$.reply_to'))"
)
_REF_POSTGRES = "coalesce(room_events.data ->> 'message_id', room_events.data ->> 'reply_to')"

_COLUMNS = (*EVENT_RECORD_COLUMNS, RoomEvent.room_pk)


class _Duplicate(Exception):
    """The change's (sender, client_message_id) was stored before."""


class SqlMessages:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _refers_to(self, message_id: int) -> ColumnElement[bool]:
        if self._db.is_sqlite:
            return literal_column(_REF_SQLITE) == message_id
        return literal_column(_REF_POSTGRES) == str(message_id)

    async def get(self, room_id: str, message_id: int) -> EventRecord | None:
        async with self._db.read() as s:
            row = await s.scalar(
                select(RoomEvent)
                .join(Room)
                .where(
                    Room.room_id == room_id, RoomEvent.id == message_id, RoomEvent.type == "chat"
                )
            )
            return _record(row, room_id) if row else None

    async def change(
        self,
        room_id: str,
        message_id: int,
        rewrite: Rewrite,
        event: NewEvent,
        *,
        erase: bool = False,
    ) -> Changed:
        try:
            async with self._db.write_conn() as c:
                return await self._change(c, room_id, message_id, rewrite, event, erase)
        except _Duplicate:
            prior = await self._find(room_id, event.sender, event.client_message_id)
            message = await self.get(room_id, message_id)
            if prior is None or message is None:
                raise
            return Changed(message, prior, duplicate=True)

    async def _change(
        self,
        c: AsyncConnection,
        room_id: str,
        message_id: int,
        rewrite: Rewrite,
        event: NewEvent,
        erase: bool,
    ) -> Changed:
        row = (
            await c.execute(
                select(*_COLUMNS)
                .join(Room, Room.id == RoomEvent.room_pk)
                .where(
                    Room.room_id == room_id, RoomEvent.id == message_id, RoomEvent.type == "chat"
                )
                .with_for_update(of=RoomEvent, key_share=True)
            )
        ).first()
        if row is None:
            raise NotFound(f"no message {message_id} in room '{room_id}'")
        old: dict[str, Any] = dict(row.data)
        new = rewrite(old)
        message = EventRecord(
            row.id,
            room_id,
            row.seq,
            row.type,
            new if new is not None else old,
            row.sender,
            row.client_message_id,
            row.created_at,
        )
        if new is None:
            return Changed(message, None)
        await c.execute(update(RoomEvent).where(RoomEvent.id == message_id).values(data=new))
        await self._turn_follows(c, old, new)
        if erase:
            await self._erase_traces(c, row.room_pk, message_id)
        seq = (
            await c.execute(
                update(Room)
                .where(Room.id == row.room_pk)
                .values(last_seq=Room.last_seq + 1)
                .returning(Room.last_seq)
            )
        ).scalar_one()
        now = datetime.now(UTC)
        try:
            event_id = (
                await c.execute(
                    insert(RoomEvent)
                    .values(
                        room_pk=row.room_pk,
                        seq=seq,
                        type=event.type,
                        data=event.data,
                        sender=event.sender,
                        client_message_id=event.client_message_id,
                        created_at=now,
                    )
                    .returning(RoomEvent.id)
                )
            ).scalar_one()
        except IntegrityError:
            raise _Duplicate from None  # rolls the rewrite and the seq back
        return Changed(
            message,
            EventRecord(
                event_id,
                room_id,
                seq,
                event.type,
                event.data,
                event.sender,
                event.client_message_id,
                now,
            ),
        )

    @staticmethod
    async def _turn_follows(c: AsyncConnection, old: dict[str, Any], new: dict[str, Any]) -> None:
        """The conversation turn a room chat also became holds its text: it changes
        with the message (the AI's later context sees the fix; nothing is re-run)."""
        conversation, text = old.get("conversation_id"), old.get("content")
        if conversation is None or text is None or new.get("content") == text:
            return
        replacement = new.get("content") or ""
        await c.execute(
            update(ConversationTurn)
            .where(
                ConversationTurn.conversation_id == conversation,
                ConversationTurn.role == old.get("role", "user"),
                ConversationTurn.content == text,
            )
            .values(content=replacement)
        )
        # A conversation is named after its first message.
        await c.execute(
            update(Conversation)
            .where(Conversation.id == conversation, Conversation.title == conversation_title(text))
            .values(title=conversation_title(replacement) if replacement else "deleted message")
        )

    async def _erase_traces(self, c: AsyncConnection, room_pk: int, message_id: int) -> None:
        edits = (
            await c.execute(
                select(RoomEvent.id, RoomEvent.data).where(
                    RoomEvent.room_pk == room_pk,
                    RoomEvent.type == "message_edited",
                    self._refers_to(message_id),
                )
            )
        ).all()
        for edit_id, data in edits:
            scrubbed = {k: v for k, v in dict(data).items() if k != "content"}
            await c.execute(
                update(RoomEvent)
                .where(RoomEvent.id == edit_id)
                .values(data={**scrubbed, "deleted": True})
            )
        await c.execute(delete(MessageMention).where(MessageMention.event_id == message_id))

    async def _find(
        self, room_id: str, sender: str | None, client_message_id: str | None
    ) -> EventRecord | None:
        if sender is None or client_message_id is None:
            return None
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

    async def replies(
        self, room_id: str, message_id: int, before_seq: int | None, limit: int, after_seq: int = 0
    ) -> list[EventRecord]:
        query = (
            select(RoomEvent)
            .join(Room)
            .where(
                Room.room_id == room_id,
                RoomEvent.type == "chat",
                self._refers_to(message_id),
                RoomEvent.seq > after_seq,
            )
        )
        if before_seq is not None:
            query = query.where(RoomEvent.seq < before_seq)
        async with self._db.read() as s:
            rows = await s.scalars(query.order_by(RoomEvent.seq.desc()).limit(limit))
            return [_record(r, room_id) for r in reversed(list(rows))]

    async def add_mentions(self, message: EventRecord, usernames: list[str], by: str) -> None:
        if not usernames:
            return
        async with self._db.write() as s:
            room_pk = await s.scalar(select(RoomEvent.room_pk).where(RoomEvent.id == message.id))
            if room_pk is None:
                return  # the message (or its room) is gone already
            await s.execute(
                insert(MessageMention),
                [
                    {
                        "event_id": message.id,
                        "username": u,
                        "room_pk": room_pk,
                        "seq": message.seq,
                        "by": by,
                    }
                    for u in usernames
                ],
            )

    async def mentions(self, username: str, limit: int) -> list[MentionRecord]:
        async with self._db.read() as s:
            rows = await s.execute(
                select(
                    Room.room_id,
                    MessageMention.seq,
                    MessageMention.event_id,
                    MessageMention.by,
                    MessageMention.seq > RoomMember.read_seq,
                )
                .join(Room, Room.id == MessageMention.room_pk)
                .join(
                    RoomMember,
                    (RoomMember.room_pk == MessageMention.room_pk)
                    & (RoomMember.username == MessageMention.username),
                )
                .where(MessageMention.username == username)
                .order_by(MessageMention.event_id.desc())
                .limit(limit)
            )
            return [
                MentionRecord(room, seq, event_id, by, bool(unread))
                for room, seq, event_id, by, unread in rows
            ]

    async def unread_mentions(self, username: str) -> dict[str, int]:
        async with self._db.read() as s:
            rows = await s.execute(
                select(Room.room_id, func.count())
                .select_from(MessageMention)
                .join(Room, Room.id == MessageMention.room_pk)
                .join(
                    RoomMember,
                    (RoomMember.room_pk == MessageMention.room_pk)
                    & (RoomMember.username == MessageMention.username),
                )
                .where(
                    MessageMention.username == username, MessageMention.seq > RoomMember.read_seq
                )
                .group_by(Room.room_id)
            )
            return {room: int(count) for room, count in rows}
