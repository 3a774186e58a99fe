from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from chinwag.protocol.errors import Conflict, RoomLimit
from chinwag.store.base import MemberRecord, RoomRecord
from chinwag.store.sql.database import Database, stored_time
from chinwag.store.sql.tables import Room, RoomMember, StoredFile, User

# The reads every connect and join makes: Core queries through Database.rows (one
# thread round trip), each row a room's columns, then a member's.
_ROOM_COLUMNS = (
    Room.id,
    Room.room_id,
    Room.room_name,
    Room.room_type,
    Room.owner,
    Room.created_at,
    Room.last_seq,
    Room.history_visibility,
    Room.members_version,
)
_MEMBER_COLUMNS = (
    RoomMember.username,
    RoomMember.joined_at,
    RoomMember.delivered_seq,
    RoomMember.read_seq,
    RoomMember.joined_seq,
)
_ROOMS_OF = (
    select(*_ROOM_COLUMNS, *_MEMBER_COLUMNS)
    .join(RoomMember, RoomMember.room_pk == Room.id)
    .where(RoomMember.username == bindparam("username"))
    .order_by(Room.room_id)
)
_GET = select(*_ROOM_COLUMNS).where(Room.room_id == bindparam("room_id"))
_MEMBER = (
    select(*_MEMBER_COLUMNS)
    .join(Room, RoomMember.room_pk == Room.id)
    .where(Room.room_id == bindparam("room_id"), RoomMember.username == bindparam("username"))
)

# The room's members_version on every row (one row with username NULL for no members).
_MEMBERS_VERSIONED = (
    select(Room.members_version, RoomMember.username)
    .outerjoin(RoomMember, RoomMember.room_pk == Room.id)
    .where(Room.room_id == bindparam("room_id"))
    .order_by(RoomMember.joined_at, RoomMember.username)
)


def _room_row(row: Sequence[Any]) -> RoomRecord:
    pk, room_id, name, kind, owner, created, last, seen, version = row
    return RoomRecord(
        pk, room_id, name, kind, owner, stored_time(created), last, seen, version or 0
    )


def _member_row(row: Sequence[Any]) -> MemberRecord:
    username, joined, delivered, read, joined_seq = row
    return MemberRecord(username, stored_time(joined), delivered, read, joined_seq)


def first_members_version() -> int:
    """A new room's first ``members_version``: the clock, in microseconds.

    Caches of member lists (``core/rooms.py``, ``core/events.py``, in every process)
    are keyed by room name and version. A room deleted and created again under the
    same name must never repeat a version of its earlier life, or those caches would
    answer with the old members. A version grows by one per membership change, each
    a committed write that takes far longer than a microsecond, so a room's versions
    stay below the clock, and the next room of that name starts above them."""
    return time.time_ns() // 1000


def room_record(row: Room) -> RoomRecord:
    return RoomRecord(
        row.id,
        row.room_id,
        row.room_name,
        row.room_type,
        row.owner,
        row.created_at,
        row.last_seq,
        row.history_visibility,
        row.members_version or 0,
    )


class _Unchanged(Exception):
    """Nothing to add (no such room, or already a member): roll back."""


class SqlRooms:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(
        self,
        room_id: str,
        room_name: str,
        room_type: str,
        owner: str,
        *,
        max_owned: int | None = None,
        history_visibility: str = "shared",
    ) -> RoomRecord:
        try:
            async with self._db.write() as s:
                if max_owned is not None:
                    await self._check_owned(s, owner, max_owned)
                row = Room(
                    room_id=room_id,
                    room_name=room_name,
                    room_type=room_type,
                    owner=owner,
                    last_seq=0,
                    history_visibility=history_visibility,
                    members_version=first_members_version(),
                )
                s.add(row)
                await s.flush()
                s.add(RoomMember(room_pk=row.id, username=owner, delivered_seq=0, read_seq=0))
                return room_record(row)
        except IntegrityError:
            raise Conflict(f"room '{room_id}' exists") from None

    @staticmethod
    async def _check_owned(s: AsyncSession, owner: str, max_owned: int) -> None:
        # The owner's user row lock (PostgreSQL; SQLite writers are serialised anyway)
        # queues the same owner's concurrent creates behind this count.
        await s.execute(select(User.id).where(User.username == owner).with_for_update())
        owned = await s.scalar(select(func.count()).select_from(Room).where(Room.owner == owner))
        if (owned or 0) >= max_owned:
            raise RoomLimit(
                f"you own {max_owned} rooms, the most allowed; delete one first",
                details={"max_rooms": max_owned},
            )

    async def get(self, room_id: str) -> RoomRecord | None:
        rows = await self._db.rows(_GET, {"room_id": room_id})
        return _room_row(rows[0]) if rows else None

    async def delete(self, room_id: str) -> bool:
        return await self.delete_with_files(room_id) is not None

    async def delete_with_files(self, room_id: str) -> list[str] | None:
        async with self._db.write() as s:
            # The room row's lock orders this against SqlFiles.add: a file recorded
            # concurrently either commits first (and is listed below) or finds no room.
            pk = await s.scalar(select(Room.id).where(Room.room_id == room_id).with_for_update())
            if pk is None:
                return None
            stored = list(
                await s.scalars(select(StoredFile.stored_name).where(StoredFile.room_pk == pk))
            )
            await s.execute(delete(RoomMember).where(RoomMember.room_pk == pk))
            await s.execute(delete(Room).where(Room.id == pk))  # files and events cascade
            return stored

    async def set_history_visibility(self, room_id: str, value: str) -> bool:
        async with self._db.write() as s:
            result = await s.execute(
                update(Room).where(Room.room_id == room_id).values(history_visibility=value)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def add_member(
        self, room_id: str, username: str, *, max_members: int | None = None
    ) -> bool:
        try:
            return await self._add_member(room_id, username, max_members)
        except _Unchanged:
            return False
        except IntegrityError:  # the same user joined concurrently from elsewhere
            return False

    async def _add_member(self, room_id: str, username: str, max_members: int | None) -> bool:
        async with self._db.write() as s:
            # Bumping the version first takes the room row's write lock, so concurrent
            # adds queue here and the member count below cannot change until commit.
            row = (
                await s.execute(
                    update(Room)
                    .where(Room.room_id == room_id)
                    .values(members_version=Room.members_version + 1)
                    .returning(Room.id, Room.last_seq)
                )
            ).first()
            if row is None:
                raise _Unchanged
            pk, last_seq = row
            exists = await s.scalar(
                select(RoomMember.username).where(
                    RoomMember.room_pk == pk, RoomMember.username == username
                )
            )
            if exists is not None:
                raise _Unchanged  # rolls the version bump back
            if max_members is not None:
                count = await s.scalar(
                    select(func.count()).select_from(RoomMember).where(RoomMember.room_pk == pk)
                )
                if (count or 0) >= max_members:
                    raise Conflict(
                        f"room '{room_id}' already has {max_members} members",
                        details={"max_members": max_members},
                    )
            s.add(
                RoomMember(
                    room_pk=pk,
                    username=username,
                    delivered_seq=last_seq,
                    read_seq=last_seq,
                    joined_seq=last_seq,
                )
            )
            return True

    async def remove_member(self, room_id: str, username: str) -> bool:
        async with self._db.write() as s:
            pk = select(Room.id).where(Room.room_id == room_id).scalar_subquery()
            result = await s.execute(
                delete(RoomMember).where(RoomMember.room_pk == pk, RoomMember.username == username)
            )
            if not result.rowcount:  # type: ignore[attr-defined]
                return False
            await s.execute(
                update(Room)
                .where(Room.room_id == room_id)
                .values(members_version=Room.members_version + 1)
            )
            return True

    async def members(self, room_id: str) -> list[str]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(RoomMember.username)
                .join(Room)
                .where(Room.room_id == room_id)
                .order_by(RoomMember.joined_at, RoomMember.username)
            )
            return list(rows)

    async def members_versioned(self, room_id: str) -> tuple[int, list[str]]:
        # One statement, so the version and the list are of one moment.
        rows = await self._db.rows(_MEMBERS_VERSIONED, {"room_id": room_id})
        if not rows:
            return 0, []
        return int(rows[0][0] or 0), [name for _, name in rows if name is not None]

    async def member(self, room_id: str, username: str) -> MemberRecord | None:
        rows = await self._db.rows(_MEMBER, {"room_id": room_id, "username": username})
        return _member_row(rows[0]) if rows else None

    async def rooms_of(self, username: str) -> list[tuple[RoomRecord, MemberRecord]]:
        # Read at every connect.
        split = len(_ROOM_COLUMNS)
        return [
            (_room_row(row[:split]), _member_row(row[split:]))
            for row in await self._db.rows(_ROOMS_OF, {"username": username})
        ]

    async def count_by_type(self) -> dict[str, int]:
        async with self._db.read() as s:
            rows = await s.execute(select(Room.room_type, func.count()).group_by(Room.room_type))
            counts = {"private": 0, "shared": 0, "group": 0}
            counts.update({t: n for t, n in rows.all()})
            return counts

    async def pending_counts(self) -> dict[str, int]:
        async with self._db.read() as s:
            rows = await s.execute(
                select(RoomMember.username, func.sum(Room.last_seq - RoomMember.delivered_seq))
                .join(Room, Room.id == RoomMember.room_pk)
                .where(Room.last_seq > RoomMember.delivered_seq)
                .group_by(RoomMember.username)
            )
            return {u: int(n) for u, n in rows.all()}

    async def advance_delivered(self, room_id: str, username: str, seq: int) -> int | None:
        return await self._advance(room_id, username, seq, read=False)

    async def advance_read(self, room_id: str, username: str, seq: int) -> int | None:
        return await self._advance(room_id, username, seq, read=True)

    async def _advance(self, room_id: str, username: str, seq: int, *, read: bool) -> int | None:
        column = RoomMember.read_seq if read else RoomMember.delivered_seq
        async with self._db.write() as s:
            room = await s.scalar(select(Room).where(Room.room_id == room_id))
            if room is None:
                return None
            seq = min(seq, room.last_seq)
            where = (RoomMember.room_pk == room.id, RoomMember.username == username)
            old = await s.scalar(select(column).where(*where).with_for_update())
            if old is None or old >= seq:
                return None
            values: dict[str, int] = {"read_seq" if read else "delivered_seq": seq}
            await s.execute(update(RoomMember).where(*where).values(**values))
            if read:
                await s.execute(
                    update(RoomMember)
                    .where(*where, RoomMember.delivered_seq < seq)
                    .values(delivered_seq=seq)
                )
            return int(old)
