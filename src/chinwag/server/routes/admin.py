"""The admin page's endpoints: users (with AI spend), changing an account, rooms.
Stats are ``GET /api/v1/ws/stats``; deleting a room is ``DELETE /api/v1/ws/rooms/{id}``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from chinwag.protocol.codec import iso
from chinwag.protocol.errors import Forbidden, NotFound
from chinwag.server.deps import AdminDep, RuntimeDep
from chinwag.store.base import Budget, UserChanges, UserRecord, UserSpend

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


class BudgetModel(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tokens_per_day: Annotated[int, Field(ge=0)] | None = None
    usd_per_month: Annotated[float, Field(ge=0)] | None = None


class Spend(BaseModel):
    tokens_used: int
    cost_usd: float


class AdminUser(BaseModel):
    id: int
    username: str
    is_admin: bool
    disabled: bool
    online: bool
    created_at: str
    budget: BudgetModel  # the per-user override; a null field uses the server's default
    ai: Spend


class AdminUsers(BaseModel):
    users: list[AdminUser]


class UserPatch(BaseModel):
    """Fields left out stay as they are. ``budget`` replaces the user's override
    (a null field, or ``budget: null``, returns to the server's default)."""

    model_config = ConfigDict(extra="forbid")
    disabled: bool | None = None
    is_admin: bool | None = None
    budget: BudgetModel | None = None


class AdminRoom(BaseModel):
    room_id: str
    room_name: str
    room_type: str
    owner: str
    members: int
    last_seq: int
    created_at: str


class AdminRooms(BaseModel):
    rooms: list[AdminRoom]


def _user(user: UserRecord, online: set[str], spend: dict[str, UserSpend]) -> AdminUser:
    used = spend.get(user.username, UserSpend(0, 0.0))
    return AdminUser(
        id=user.id,
        username=user.username,
        is_admin=user.is_admin,
        disabled=user.disabled,
        online=user.username in online,
        created_at=iso(user.created_at),
        budget=BudgetModel(
            tokens_per_day=user.budget_tokens_per_day, usd_per_month=user.budget_usd_per_month
        ),
        ai=Spend(tokens_used=used.tokens_used, cost_usd=round(used.cost_usd, 8)),
    )


@router.get("/users", response_model=AdminUsers)
async def users(
    _admin: AdminDep, rt: RuntimeDep, limit: Annotated[int, Query(ge=1, le=10000)] = 1000
) -> AdminUsers:
    """Every user with their state, budget override and AI spend (all time)."""
    online = set(await rt.service.presence.online_users())
    spend = await rt.store.directory.spend()
    return AdminUsers(users=[_user(u, online, spend) for u in await rt.store.users.list_all(limit)])


@router.patch("/users/{username}", response_model=AdminUser)
async def change_user(username: str, body: UserPatch, admin: AdminDep, rt: RuntimeDep) -> AdminUser:
    """Disable or enable an account (a disabled user's tokens stop working at once and
    their open sockets, on every process, are closed with 4401), grant or take admin,
    set the AI budget override."""
    if username == admin.username and (body.disabled or body.is_admin is False):
        raise Forbidden("an admin cannot disable or demote their own account")
    budget = None
    if "budget" in body.model_fields_set:
        given = body.budget or BudgetModel()
        budget = Budget(given.tokens_per_day, given.usd_per_month)
    user = await rt.store.users.update(
        username, UserChanges(disabled=body.disabled, is_admin=body.is_admin, budget=budget)
    )
    if user is None:
        raise NotFound(f"user '{username}' does not exist")
    if body.disabled:
        await rt.service.sign_out(username, f"disabled by {admin.username}")
    online = set(await rt.service.presence.online_users())
    return _user(user, online, await rt.store.directory.spend())


@router.get("/rooms", response_model=AdminRooms)
async def rooms(
    _admin: AdminDep, rt: RuntimeDep, limit: Annotated[int, Query(ge=1, le=10000)] = 1000
) -> AdminRooms:
    """Every room with its type, owner, member count and last seq."""
    return AdminRooms(
        rooms=[
            AdminRoom(
                room_id=r.room_id,
                room_name=r.room_name,
                room_type=r.room_type,
                owner=r.owner,
                members=n,
                last_seq=r.last_seq,
                created_at=iso(r.created_at),
            )
            for r, n in await rt.store.directory.rooms(None, limit)
        ]
    )
