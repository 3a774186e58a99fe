from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, StringConstraints

from chinwag.protocol.messages import DB_INT_MAX, HistoryVisibility, RoomId, RoomType
from chinwag.server.deps import RuntimeDep, UserDep

router = APIRouter(prefix="/api/v1/ws", tags=["rooms"])


class RoomIn(BaseModel):
    room_id: RoomId
    room_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    room_type: RoomType = "private"
    history_visibility: HistoryVisibility | None = None  # default: joined for private rooms


class RoomPatch(BaseModel):
    history_visibility: HistoryVisibility


class MemberIn(BaseModel):
    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class TokenOut(BaseModel):
    token: str
    expires_in: int


@router.post("/token", response_model=TokenOut)
async def ws_token(who: UserDep, rt: RuntimeDep) -> TokenOut:
    return TokenOut(token=rt.tokens.ws_token(who), expires_in=rt.tokens.ws_ttl)


@router.post("/rooms", status_code=201)
async def create_room(body: RoomIn, who: UserDep, rt: RuntimeDep) -> dict[str, Any]:
    rooms = rt.service.rooms
    room = await rooms.create(
        who, body.room_id, body.room_name, body.room_type, body.history_visibility
    )
    return await rooms.describe(room)


@router.patch("/rooms/{room_id}")
async def update_room(
    room_id: RoomId, body: RoomPatch, who: UserDep, rt: RuntimeDep
) -> dict[str, Any]:
    rooms = rt.service.rooms
    return await rooms.describe(
        await rooms.set_history_visibility(who, room_id, body.history_visibility)
    )


@router.get("/rooms/{room_id}")
async def get_room(room_id: RoomId, who: UserDep, rt: RuntimeDep) -> dict[str, Any]:
    rooms = rt.service.rooms
    return await rooms.describe(await rooms.visible(who, room_id))


@router.delete("/rooms/{room_id}", status_code=204)
async def delete_room(room_id: RoomId, who: UserDep, rt: RuntimeDep) -> Response:
    await rt.service.rooms.delete(who, room_id)
    return Response(status_code=204)


@router.post("/rooms/{room_id}/members", status_code=201)
async def add_member(
    room_id: RoomId, body: MemberIn, who: UserDep, rt: RuntimeDep
) -> dict[str, Any]:
    rooms = rt.service.rooms
    await rooms.add_member(who, room_id, body.username)
    return await rooms.describe(await rooms.get(room_id))


@router.delete("/rooms/{room_id}/members/{username}", status_code=204)
async def remove_member(room_id: RoomId, username: str, who: UserDep, rt: RuntimeDep) -> Response:
    await rt.service.rooms.remove_member(who, room_id, username)
    return Response(status_code=204)


@router.get("/rooms/{room_id}/messages")
async def history(
    room_id: RoomId,
    who: UserDep,
    rt: RuntimeDep,
    before_seq: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    reply_to: Annotated[int | None, Query(ge=1, le=DB_INT_MAX)] = None,
) -> dict[str, Any]:
    rooms = rt.service.rooms
    floor = await rooms.history_floor(who, await rooms.visible(who, room_id))
    events = await rt.service.message_ops.history(room_id, before_seq, limit, floor, reply_to)
    return {
        "room_id": room_id,
        "messages": events,
        "next_before_seq": events[0]["seq"] if len(events) == limit else None,
    }
