"""Overviews for the room list and the admin page: a few grouped reads, no writes."""

from __future__ import annotations

from sqlalchemy import and_, func, or_, select, tuple_

from chinwag.store.base import EventRecord, MemberRecord, RoomRecord, RoomSummary, UserSpend
from chinwag.store.sql.database import Database, stored_time
from chinwag.store.sql.rooms import room_record
from chinwag.store.sql.tables import Conversation, ConversationTurn, Room, RoomEvent, RoomMember

#: Event types a person counts as messages (unread, last message).
MESSAGE_TYPES = ("chat", "file_upload")


class SqlDirectory:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def summaries(self, username: str) -> list[RoomSummary]:
        async with self._db.read() as s:
            mine = (
                await s.execute(
                    select(Room, RoomMember.read_seq, RoomMember.joined_seq)
                    .join(RoomMember, RoomMember.room_pk == Room.id)
                    .where(RoomMember.username == username)
                    .order_by(Room.room_id)
                )
            ).all()
            if not mine:
                return []
            pks = [room.id for room, _, _ in mine]
            unread = dict(
                (
                    await s.execute(
                        select(RoomMember.room_pk, func.count(RoomEvent.id))
                        .join(
                            RoomEvent,
                            and_(
                                RoomEvent.room_pk == RoomMember.room_pk,
                                RoomEvent.seq > RoomMember.read_seq,
                            ),
                        )
                        .where(
                            RoomMember.username == username,
                            RoomEvent.type.in_(MESSAGE_TYPES),
                            or_(RoomEvent.sender.is_(None), RoomEvent.sender != username),
                        )
                        .group_by(RoomMember.room_pk)
                    )
                )
                .tuples()
                .all()
            )
            newest = (
                select(RoomEvent.room_pk, func.max(RoomEvent.seq))
                .where(RoomEvent.room_pk.in_(pks), RoomEvent.type.in_(MESSAGE_TYPES))
                .group_by(RoomEvent.room_pk)
            )
            last_rows = (
                await s.scalars(
                    select(RoomEvent).where(tuple_(RoomEvent.room_pk, RoomEvent.seq).in_(newest))
                )
            ).all()
            last = {e.room_pk: e for e in last_rows}
            out = []
            for room, read_seq, joined_seq in mine:
                event = last.get(room.id)
                if (
                    event is not None
                    and room.history_visibility == "joined"
                    and event.seq <= joined_seq
                ):
                    event = None  # sent before the member joined: not theirs to read
                record = (
                    None
                    if event is None
                    else EventRecord(
                        event.id,
                        room.room_id,
                        event.seq,
                        event.type,
                        dict(event.data),
                        event.sender,
                        event.client_message_id,
                        stored_time(event.created_at),
                    )
                )
                out.append(
                    RoomSummary(
                        room_record(room), int(read_seq), int(unread.get(room.id, 0)), record
                    )
                )
            return out

    async def rooms(self, room_type: str | None, limit: int) -> list[tuple[RoomRecord, int]]:
        query = (
            select(Room, func.count(RoomMember.username))
            .outerjoin(RoomMember, RoomMember.room_pk == Room.id)
            .group_by(Room.id)
            .order_by(Room.room_id)
            .limit(limit)
        )
        if room_type is not None:
            query = query.where(Room.room_type == room_type)
        async with self._db.read() as s:
            return [(room_record(room), int(n)) for room, n in (await s.execute(query)).all()]

    async def cursors(self, room_id: str) -> list[MemberRecord]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(RoomMember)
                .join(Room)
                .where(Room.room_id == room_id)
                .order_by(RoomMember.username)
            )
            return [
                MemberRecord(
                    r.username, stored_time(r.joined_at), int(r.delivered_seq), int(r.read_seq)
                )
                for r in rows
            ]

    async def spend(self) -> dict[str, UserSpend]:
        async with self._db.read() as s:
            rows = await s.execute(
                select(
                    Conversation.owner,
                    func.sum(ConversationTurn.tokens_used),
                    func.sum(ConversationTurn.cost_usd),
                )
                .join(ConversationTurn, ConversationTurn.conversation_id == Conversation.id)
                .group_by(Conversation.owner)
            )
            return {
                owner: UserSpend(int(tokens or 0), float(cost or 0.0))
                for owner, tokens, cost in rows.all()
            }
