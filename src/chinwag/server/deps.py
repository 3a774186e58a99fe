"""FastAPI dependencies: the running chinwag, and the caller's identity."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import OAuth2PasswordBearer
from prometheus_client import CollectorRegistry

from chinwag.core.service import ChatService
from chinwag.core.session import Identity
from chinwag.files.s3 import S3Storage
from chinwag.files.scanner import Scanner
from chinwag.files.storage import LocalStorage
from chinwag.protocol.errors import AuthFailed, Forbidden
from chinwag.server.auth import ACCESS, Passwords, Tokens
from chinwag.server.throttles import AddressLimit, LoginThrottle
from chinwag.settings import Settings
from chinwag.store.base import Store


@dataclass
class Runtime:
    """Everything create_app picked, reachable from a request."""

    settings: Settings
    store: Store
    service: ChatService
    tokens: Tokens
    passwords: Passwords
    login_throttle: LoginThrottle
    register_limit: AddressLimit
    storage: LocalStorage | S3Storage
    scanner: Scanner
    registry: CollectorRegistry
    sockets: set[object] = field(default_factory=set)  # open WebSocket connections
    sockets_closed: asyncio.Event = field(default_factory=asyncio.Event)

    async def close_sockets(self, timeout: float = 5.0) -> None:
        """Close every WebSocket with 1012 and wait until their close frames are out."""
        await self.service.close_all(timeout)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self.sockets:
                    self.sockets_closed.clear()
                    await self.sockets_closed.wait()


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)


async def current_user(
    rt: Annotated[Runtime, Depends(runtime)], token: Annotated[str | None, Depends(_bearer)]
) -> Identity:
    if token is None:
        raise AuthFailed("missing bearer token")
    claims = rt.tokens.verify(token, ACCESS)
    user = await rt.store.users.get(claims.identity.username)
    if user is None:
        raise AuthFailed("the user no longer exists")
    if user.disabled:
        raise AuthFailed("this account has been disabled")
    return Identity(user.id, user.username, user.is_admin)


async def admin_user(who: Annotated[Identity, Depends(current_user)]) -> Identity:
    if not who.is_admin:
        raise Forbidden("admin only")
    return who


RuntimeDep = Annotated[Runtime, Depends(runtime)]
UserDep = Annotated[Identity, Depends(current_user)]
AdminDep = Annotated[Identity, Depends(admin_user)]
