"""Search over the caller's rooms, and the caller's mentions (SPEC §14)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from chinwag.protocol.messages import RoomId
from chinwag.server.deps import RuntimeDep, UserDep

router = APIRouter(prefix="/api/v1", tags=["messages"])


@router.get("/search")
async def search(
    who: UserDep,
    rt: RuntimeDep,
    q: Annotated[str, Query(min_length=1, max_length=500)],
    room_id: RoomId | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    before_id: Annotated[int | None, Query(ge=1)] = None,
) -> dict[str, Any]:
    results = await rt.service.message_ops.search(who, q, room_id, before_id, limit)
    return {
        "results": results,
        "next_before_id": results[-1]["message_id"] if len(results) == limit else None,
    }


@router.get("/mentions")
async def mentions(
    who: UserDep, rt: RuntimeDep, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> dict[str, Any]:
    return await rt.service.message_ops.mentions(who, limit)
