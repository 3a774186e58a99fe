"""Rooms and who may do what in them. Used by the WebSocket handlers and the HTTP
routes alike, so both enforce the same rules (docs/protocol.md §3.3):

- ``private``: its creator plus at most one user the creator (or an admin) adds;
- ``shared``: any authenticated user may join;
- ``group``: only members the owner or an admin added.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from chinwag.core.events import Events
from chinwag.core.personal import PERSONAL, ensure_personal, is_personal, personal_room
from chinwag.core.session import Identity
from chinwag.core.visibility import VISIBILITIES, default_for, visible_after
from chinwag.protocol.errors import (
    ChatError,
    Conflict,
    Forbidden,
    InvalidMessage,
    NotFound,
    NotInRoom,
)
from chinwag.protocol.frames import iso
from chinwag.store.base import MemberRecord, RoomRecord, Store

ROOM_TYPES = ("private", "shared", "group")
PRIVATE_MEMBERS = 2  # the creator and one other


def _capacity(room: RoomRecord) -> int | None:
    return PRIVATE_MEMBERS if room.room_type == "private" else None


@dataclass(frozen=True, slots=True)
class Joined:
    room: RoomRecord
    members: list[str]
    seq: int  # the member's starting point: events after it are theirs
    new_member: bool


class Rooms:
    def __init__(
        self,
        store: Store,
        events: Events,
        unpublish: Callable[[str], Awaitable[bool]],
        max_rooms_per_user: int | None = None,
    ) -> None:
        self.store = store
        self.events = events
        self.max_rooms_per_user = max_rooms_per_user  # rooms a non-admin may own at once
        self.unpublish = unpublish  # deletes a published file by its stored name

    async def create(
        self,
        actor: Identity,
        room_id: str,
        room_name: str | None,
        room_type: str | None,
        history_visibility: str | None = None,
    ) -> RoomRecord:
        kind = room_type or "private"
        if is_personal(room_id):
            raise InvalidMessage(
                f"room ids starting with '@' are personal streams: '{room_id}' cannot be created",
                details=[{"field": "room_id", "error": "reserved"}],
            )
        if kind not in ROOM_TYPES:
            raise InvalidMessage(
                f"room_type must be one of {', '.join(ROOM_TYPES)}",
                details=[{"field": "room_type", "error": "invalid"}],
            )
        visibility = _checked_visibility(history_visibility or default_for(kind))
        limit = None if actor.is_admin else self.max_rooms_per_user
        return await self.store.rooms.create(
            room_id,
            room_name or room_id,
            kind,
            actor.username,
            max_owned=limit,
            history_visibility=visibility,
        )

    async def get(self, room_id: str) -> RoomRecord:
        room = await self.store.rooms.get(room_id)
        if room is None:
            raise NotFound(f"room '{room_id}' does not exist")
        return room

    async def require_member(
        self,
        room_id: str,
        username: str,
        /,
        *,
        refusal: type[ChatError] = NotInRoom,
        why: str | None = None,
        **extra: Any,
    ) -> MemberRecord:
        """The membership of ``username``, or ``refusal`` (NOT_IN_ROOM unless the caller
        names another error or wording). The one check-and-raise for membership."""
        member = await self.store.rooms.member(room_id, username)
        if member is None:
            raise refusal(why or NotInRoom.of(room_id).message, **extra)
        return member

    async def visible(self, actor: Identity, room_id: str) -> RoomRecord:
        """The room if ``actor`` may see it: anyone for shared rooms, members otherwise."""
        room = await self.get(room_id)
        if room.room_type != "shared" and not actor.is_admin:
            await self.require_member(room_id, actor.username, refusal=Forbidden)
        return room

    async def history_floor(self, actor: Identity, room: RoomRecord) -> int:
        """The seq after which ``actor`` may read ``room``'s history (visibility.py)."""
        member = await self.store.rooms.member(room.room_id, actor.username)
        return visible_after(room, member, actor.is_admin)

    async def set_history_visibility(self, actor: Identity, room_id: str, value: str) -> RoomRecord:
        room = await self.get(room_id)
        self._owner_or_admin(actor, room)
        await self.store.rooms.set_history_visibility(room_id, _checked_visibility(value))
        return await self.get(room_id)

    async def join(
        self,
        actor: Identity,
        room_id: str,
        room_name: str | None = None,
        room_type: str | None = None,
        history_visibility: str | None = None,
    ) -> Joined:
        """Join (creating an unknown room). Members simply re-subscribe."""
        if is_personal(room_id):
            self._own_personal(actor, room_id)
            await ensure_personal(self.store, self.events.hub, actor.username)
        room = await self.store.rooms.get(room_id)
        if room is None:
            try:
                room = await self.create(actor, room_id, room_name, room_type, history_visibility)
            except Conflict:  # created concurrently by someone else
                room = await self.get(room_id)
        member = await self.store.rooms.member(room_id, actor.username)
        if member is not None:
            return Joined(room, await self.members_of(room), room.last_seq, False)
        if room.room_type != "shared" and not actor.is_admin:
            raise Forbidden(f"room '{room_id}' is {room.room_type}: only its members may join")
        try:
            added = await self.store.rooms.add_member(
                room_id, actor.username, max_members=_capacity(room)
            )
        except Conflict:
            raise Forbidden(f"private room '{room_id}' already has two members") from None
        if not added:
            # Joined concurrently through another connection: one membership, one event.
            member = await self.store.rooms.member(room_id, actor.username)
            seq = member.delivered_seq if member else room.last_seq
            return Joined(room, await self._read_members(room), seq, False)
        seq = await self.events.membership(room_id, actor.username, "joined")
        return Joined(room, await self._read_members(room), seq, True)

    async def members_of(self, room: RoomRecord) -> list[str]:
        """The room's members as of ``room`` (read at its ``members_version``): a
        member's join of a big room reads the room row anyway, and the member list
        only when its version moved (the cache is ``Events.members``)."""
        return await self.events.members(room.room_id, room.members_version)

    async def _read_members(self, room: RoomRecord) -> list[str]:
        return await self.events.members(room.room_id, None)  # membership just changed

    async def leave(self, actor: Identity, room_id: str) -> int:
        if (await self.get(room_id)).room_type == PERSONAL:
            raise Forbidden(f"'{room_id}' is your personal stream: it cannot be left")
        if not await self.store.rooms.remove_member(room_id, actor.username):
            raise NotInRoom.of(room_id)
        seq = await self.events.membership(room_id, actor.username, "left")
        await self.events.hub.control_user(actor.username, "unsubscribe", room_id, seq)
        return seq

    async def delete(self, actor: Identity, room_id: str) -> None:
        room = await self.get(room_id)
        self._owner_or_admin(actor, room)
        stored = await self.store.rooms.delete_with_files(room_id)
        if stored is None:
            raise NotFound(f"room '{room_id}' does not exist")
        await self.events.room_deleted(room_id)
        for name in stored:  # their records went with the room: nothing serves them now
            await self.unpublish(name)  # logs, never raises

    async def add_member(self, actor: Identity, room_id: str, username: str) -> None:
        room = await self.get(room_id)
        self._owner_or_admin(actor, room)
        if room.room_type == PERSONAL:
            raise Forbidden(f"'{room_id}' is a personal stream: only its owner is a member")
        if await self.store.users.get(username) is None:
            raise NotFound(f"user '{username}' does not exist")
        if await self.store.rooms.member(room_id, username) is not None:
            raise Conflict(f"'{username}' is already a member of '{room_id}'")
        try:
            added = await self.store.rooms.add_member(
                room_id, username, max_members=_capacity(room)
            )
        except Conflict:
            raise Conflict(
                f"private room '{room_id}' already has two members",
                details={"max_members": PRIVATE_MEMBERS},
            ) from None
        if not added:  # added concurrently by another call
            raise Conflict(f"'{username}' is already a member of '{room_id}'")
        seq = await self.events.membership(room_id, username, "joined")
        await self.events.hub.control_user(username, "subscribe", room_id, seq)

    async def remove_member(self, actor: Identity, room_id: str, username: str) -> None:
        room = await self.get(room_id)
        self._owner_or_admin(actor, room)
        if not await self.store.rooms.remove_member(room_id, username):
            raise NotFound(f"'{username}' is not a member of '{room_id}'")
        seq = await self.events.membership(room_id, username, "left")
        await self.events.hub.control_user(username, "unsubscribe", room_id, seq)

    async def describe(self, room: RoomRecord) -> dict[str, object]:
        members = await self.store.rooms.members(room.room_id)
        return {
            "room_id": room.room_id,
            "room_name": room.room_name,
            "room_type": room.room_type,
            "history_visibility": room.history_visibility,
            "owner": room.owner,
            "members": members,
            "participants": await self.events.presence.participants(room.room_id, members),
            "created_at": iso(room.created_at),
        }

    @staticmethod
    def _own_personal(actor: Identity, room_id: str) -> None:
        if room_id != personal_room(actor.username):
            raise Forbidden(f"'{room_id}' is another user's personal stream")

    @staticmethod
    def _owner_or_admin(actor: Identity, room: RoomRecord) -> None:
        if actor.username != room.owner and not actor.is_admin:
            raise Forbidden(f"only the owner of '{room.room_id}' or an admin may do that")


def _checked_visibility(value: str) -> str:
    if value not in VISIBILITIES:
        raise InvalidMessage(
            f"history_visibility must be one of {', '.join(VISIBILITIES)}",
            details=[{"field": "history_visibility", "error": "invalid"}],
        )
    return value
