from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, StringConstraints, ValidationError

from chinwag.core.session import Identity
from chinwag.protocol.errors import AuthFailed, InvalidMessage
from chinwag.protocol.frames import iso
from chinwag.server.auth import hash_password, verify_password
from chinwag.server.deps import RuntimeDep, UserDep

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])
Username = Annotated[str, StringConstraints(min_length=1, max_length=64,
                                            pattern=r"^[A-Za-z0-9_.:-]+$")]


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
async def register(body: Credentials, rt: RuntimeDep) -> UserOut:
    user = await rt.store.users.create(body.username, await hash_password(body.password))
    return UserOut(id=user.id, username=user.username, is_admin=user.is_admin,
                   created_at=iso(user.created_at))


@router.post("/login", response_model=TokenOut,
             openapi_extra={"requestBody": {"content": {
                 "application/json": {"schema": LoginForm.model_json_schema()},
                 "application/x-www-form-urlencoded": {"schema": LoginForm.model_json_schema()},
             }, "required": True}})
async def login(request: Request, rt: RuntimeDep) -> TokenOut:
    """JSON ``{username, password}`` or an OAuth2 password form (for /docs "Authorize")."""
    form = await _credentials(request)
    client = request.client.host if request.client else "?"
    rt.throttle.check(form.username, f"ip:{client}")
    user = await rt.store.users.get(form.username)
    if user is None or not await verify_password(user.password_hash, form.password):
        rt.throttle.failed(form.username, f"ip:{client}")
        raise AuthFailed("wrong username or password")
    rt.throttle.succeeded(form.username)
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
        raise InvalidMessage(f"invalid field '{field}': {err['msg']}",
                             details=[{"field": field, "error": err["msg"]}]) from None


@router.get("/me", response_model=UserOut)
async def me(who: UserDep, rt: RuntimeDep) -> UserOut:
    user = await rt.store.users.get(who.username)
    assert user is not None
    created: datetime = user.created_at
    return UserOut(id=user.id, username=user.username, is_admin=user.is_admin,
                   created_at=iso(created))
