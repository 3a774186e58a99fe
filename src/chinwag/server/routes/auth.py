from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from chinwag.core.session import Identity
from chinwag.protocol.errors import AuthFailed, InvalidMessage
from chinwag.protocol.frames import iso
from chinwag.server.deps import RuntimeDep, UserDep
from chinwag.server.throttles import client_address

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
Username = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
]


class Credentials(BaseModel):
    username: Username
    password: Annotated[str, Field(min_length=8, max_length=256)]


class LoginForm(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64)]
    password: Annotated[str, Field(min_length=1, max_length=256)]


class UserOut(BaseModel):
    id: int
    username: str
    is_admin: bool
    created_at: str


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


@router.post("/register", status_code=201, response_model=UserOut)
async def register(request: Request, body: Credentials, rt: RuntimeDep) -> UserOut:
    """Rate-limited per address (REGISTER_RATE_LIMIT_*: 429 with Retry-After)."""
    await rt.register_limit.hit(client_address(request.scope))
    user = await rt.store.users.create(body.username, await rt.passwords.hash(body.password))
    return UserOut(
        id=user.id, username=user.username, is_admin=user.is_admin, created_at=iso(user.created_at)
    )


@router.post(
    "/login",
    response_model=TokenOut,
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {"schema": LoginForm.model_json_schema()},
                "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
            },
            "required": True,
        }
    },
)
async def login(request: Request, rt: RuntimeDep) -> TokenOut:
    """JSON ``{username, password}`` or an OAuth2 password form (for /docs "Authorize")."""
    form = await _credentials(request)
    address = client_address(request.scope)
    await rt.login_throttle.check(form.username, address)
    user = await rt.store.users.get(form.username)
    if user is None or not await rt.passwords.verify(user.password_hash, form.password):
        await rt.login_throttle.failed(form.username, address)
        raise AuthFailed("wrong username or password")
    await rt.login_throttle.succeeded(form.username, address)
    if user.disabled:
        raise AuthFailed("this account has been disabled")
    who = Identity(user.id, user.username, user.is_admin)
    return TokenOut(access_token=rt.tokens.access_token(who), expires_in=rt.tokens.access_ttl)


async def _credentials(request: Request) -> LoginForm:
    kind = request.headers.get("content-type", "")
    try:
        if kind.startswith("application/json"):
            return LoginForm.model_validate_json(await request.body())
        form = await request.form()
        return LoginForm.model_validate({k: form.get(k) for k in ("username", "password")})
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise InvalidMessage(
            f"invalid field '{field}': {err['msg']}",
            details=[{"field": field, "error": err["msg"]}],
        ) from None


@router.get("/me", response_model=UserOut)
async def me(who: UserDep, rt: RuntimeDep) -> UserOut:
    user = await rt.store.users.get(who.username)
    assert user is not None
    created: datetime = user.created_at
    return UserOut(
        id=user.id, username=user.username, is_admin=user.is_admin, created_at=iso(created)
    )
