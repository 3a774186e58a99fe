"""What the web app lists: the caller's rooms (with unread counts), the shared rooms
to join, and usernames for adding members."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel

from chinwag.core.personal import PERSONAL
from chinwag.protocol.codec import iso
from chinwag.protocol.messages import RoomId
from chinwag.server.deps import RuntimeDep, UserDep
from chinwag.store.base import EventRecord, RoomRecord

router = APIRouter(tags=["rooms"])


class LastMessage(BaseModel):
    seq: int
    type: str
    username: str | None
    content: str
    timestamp: str


class RoomListItem(BaseModel):
    room_id: str
    room_name: str
    room_type: str
    owner: str
    last_seq: int
    created_at: str
    unread: int | None = None  # scope=mine
    mentions: int | None = None  # scope=mine: unread mentions of the caller
    read_seq: int | None = None  # scope=mine
    last_message: LastMessage | None = None  # scope=mine
    members: int | None = None  # scope=shared: how many
    member: bool | None = None  # scope=shared: is the caller one


class RoomList(BaseModel):
    scope: str
    rooms: list[RoomListItem]


class MemberCursor(BaseModel):
    username: str
    delivered_seq: int
    read_seq: int


class Receipts(BaseModel):
    room_id: str
    members: list[MemberCursor]


class UserList(BaseModel):
    users: list[str]


def last_message(event: EventRecord | None) -> LastMessage | None:
    if event is None:
        return None
    data: dict[str, Any] = event.data
    content = data.get("content") if event.type == "chat" else data.get("file_name")
    return LastMessage(
        seq=event.seq,
        type=event.type,
        username=data.get("username", event.sender),
        content=str(content or ""),
        timestamp=iso(event.created_at),
    )


def _item(room: RoomRecord, **extra: Any) -> RoomListItem:
    return RoomListItem(
        room_id=room.room_id,
        room_name=room.room_name,
        room_type=room.room_type,
        owner=room.owner,
        last_seq=room.last_seq,
        created_at=iso(room.created_at),
        **extra,
    )


@router.get("/api/v1/ws/rooms", response_model=RoomList, response_model_exclude_none=True)
async def list_rooms(
    who: UserDep,
    rt: RuntimeDep,
    scope: Literal["mine", "shared"] = "mine",
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> RoomList:
    """``mine``: the caller's rooms with ``unread`` (messages from others after their
    read cursor), ``last_seq`` and ``last_message``; not their personal stream, whose
    replies the conversations list shows. ``shared``: the shared rooms anyone may
    join, with their member count and whether the caller is one."""
    directory = rt.store.directory
    if scope == "mine":
        summaries = [
            s for s in await directory.summaries(who.username) if s.room.room_type != PERSONAL
        ]
        mentions = await rt.store.messages.unread_mentions(who.username)
        return RoomList(
            scope=scope,
            rooms=[
                _item(
                    s.room,
                    unread=s.unread,
                    mentions=mentions.get(s.room.room_id, 0),
                    read_seq=s.read_seq,
                    last_message=last_message(s.last_message),
                )
                for s in summaries[:limit]
            ],
        )
    mine = {s.room.room_id for s in await directory.summaries(who.username)}
    shared = await directory.rooms("shared", limit)
    return RoomList(
        scope=scope,
        rooms=[_item(room, members=n, member=room.room_id in mine) for room, n in shared],
    )


@router.get("/api/v1/users", response_model=UserList)
async def find_users(
    _who: UserDep,
    rt: RuntimeDep,
    prefix: Annotated[str, Query(max_length=64)] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> UserList:
    """Usernames starting with ``prefix`` (case-insensitive; disabled accounts left
    out), for adding members to a room."""
    return UserList(users=await rt.store.users.with_prefix(prefix, limit))


@router.get("/api/v1/ws/rooms/{room_id}/receipts", response_model=Receipts)
async def receipts(room_id: RoomId, who: UserDep, rt: RuntimeDep) -> Receipts:
    """How far each member has received and read the room (everything up to their
    ``delivered_seq`` / ``read_seq``): the delivered and read state of older messages,
    which the live ``delivery_confirmation`` frames only report as they happen."""
    await rt.service.rooms.visible(who, room_id)
    return Receipts(
        room_id=room_id,
        members=[
            MemberCursor(username=m.username, delivered_seq=m.delivered_seq, read_seq=m.read_seq)
            for m in await rt.store.directory.cursors(room_id)
        ],
    )
