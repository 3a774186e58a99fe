from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from chinwag.protocol.errors import NotFound, NotInRoom
from chinwag.store.base import Appended, EventRecord
from chinwag.store.sql.database import Database
from chinwag.store.sql.tables import Room, RoomEvent, RoomMember


def _record(row: RoomEvent, room_id: str) -> EventRecord:
    return EventRecord(row.id, room_id, row.seq, row.type, dict(row.data), row.sender,
                       row.client_message_id, row.created_at)


class SqlEvents:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, room_id: str, type: str, data: dict[str, Any], *,
                     sender: str | None = None, client_message_id: str | None = None,
                     require_member: bool = False) -> Appended:
        async with self._db.write() as s:
            room_pk = await s.scalar(select(Room.id).where(Room.room_id == room_id))
            if room_pk is None:
                raise NotFound(f"room '{room_id}' does not exist")
            if require_member and sender is not None:
                member = await s.scalar(select(RoomMember.username).where(
                    RoomMember.room_pk == room_pk, RoomMember.username == sender))
                if member is None:
                    raise NotInRoom(f"you are not a member of room '{room_id}'")
            if client_message_id is not None:
                prior = await s.scalar(select(RoomEvent).where(
                    RoomEvent.room_pk == room_pk, RoomEvent.sender == sender,
                    RoomEvent.client_message_id == client_message_id))
                if prior is not None:
                    return Appended(_record(prior, room_id), duplicate=True)
            # The row lock taken here orders concurrent writers: seqs come out gapless
            # and commit in seq order, whichever process writes.
            seq = await s.scalar(update(Room).where(Room.id == room_pk)
                                 .values(last_seq=Room.last_seq + 1).returning(Room.last_seq))
            row = RoomEvent(room_pk=room_pk, seq=seq, type=type, data=data, sender=sender,
                            client_message_id=client_message_id)
            s.add(row)
            await s.flush()
            return Appended(_record(row, room_id), duplicate=False)

    async def find(self, room_id: str, sender: str, client_message_id: str) -> EventRecord | None:
        async with self._db.read() as s:
            row = await s.scalar(select(RoomEvent).join(Room).where(
                Room.room_id == room_id, RoomEvent.sender == sender,
                RoomEvent.client_message_id == client_message_id))
            return _record(row, room_id) if row else None

    async def after(self, room_id: str, after_seq: int, limit: int = 1000) -> list[EventRecord]:
        async with self._db.read() as s:
            rows = await s.scalars(select(RoomEvent).join(Room).where(
                Room.room_id == room_id, RoomEvent.seq > after_seq)
                .order_by(RoomEvent.seq).limit(limit))
            return [_record(r, room_id) for r in rows]

    async def before(self, room_id: str, before_seq: int | None, limit: int) -> list[EventRecord]:
        async with self._db.read() as s:
            query = select(RoomEvent).join(Room).where(Room.room_id == room_id)
            if before_seq is not None:
                query = query.where(RoomEvent.seq < before_seq)
            rows = await s.scalars(query.order_by(RoomEvent.seq.desc()).limit(limit))
            return [_record(r, room_id) for r in reversed(list(rows))]

    async def chats_between(self, room_id: str, after_seq: int, upto_seq: int,
                            exclude_sender: str) -> list[EventRecord]:
        async with self._db.read() as s:
            rows = await s.scalars(select(RoomEvent).join(Room).where(
                Room.room_id == room_id, RoomEvent.seq > after_seq, RoomEvent.seq <= upto_seq,
                RoomEvent.type == "chat", RoomEvent.sender.is_not(None),
                RoomEvent.sender != exclude_sender).order_by(RoomEvent.seq))
            return [_record(r, room_id) for r in rows]

    async def count(self) -> int:
        async with self._db.read() as s:
            return int(await s.scalar(select(func.count()).select_from(RoomEvent)) or 0)
