"""Signing in over HTTP: an access token from the password, WebSocket tokens from
the access token. Both are renewed before they expire; a refused password is a
``SignInError`` (reconnecting cannot fix it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx

from chinwag_client.errors import ChinwagError, SignInError

# Renew a token once this share of its lifetime has passed (so a 5 s token is
# renewed after 3.5 s): room for the HTTP round trip and a slow network.
RENEW_AT = 0.7


@dataclass
class _Token:
    value: str
    issued_at: float
    expires_at: float

    @property
    def renew_at(self) -> float:
        return self.issued_at + RENEW_AT * (self.expires_at - self.issued_at)

    def fresh(self) -> bool:
        return time.time() < self.renew_at


class Credentials:
    """The user's password and the tokens derived from it. Only this class talks to
    the auth endpoints."""

    def __init__(self, http: httpx.AsyncClient, username: str, password: str) -> None:
        self.http = http
        self.username = username
        self._password = password
        self._access: _Token | None = None
        self._ws: _Token | None = None
        self.user_id: int | None = None

    @property
    def access_token(self) -> str | None:
        return self._access.value if self._access else None

    async def sign_in(self) -> None:
        """Log in again with the password (forgetting every token)."""
        self._access = self._ws = None
        r = await self.http.post(
            "/api/v1/auth/login", json={"username": self.username, "password": self._password}
        )
        if r.status_code in (401, 403):
            raise SignInError(f"sign-in refused for {self.username!r}: {_detail(r)}")
        _check(r, "sign in")
        body = r.json()
        now = time.time()
        self._access = _Token(body["access_token"], now, now + float(body.get("expires_in", 3600)))

    async def access(self) -> str:
        if self._access is None or not self._access.fresh():
            await self.sign_in()
        assert self._access is not None
        return self._access.value

    async def auth_headers(self) -> dict[str, str]:
        """``Authorization`` for the HTTP API."""
        return {"Authorization": f"Bearer {await self.access()}"}

    async def ws_token(self, *, renew: bool = False) -> str:
        """A WebSocket token that is not about to expire (a new one when ``renew``)."""
        if renew or self._ws is None or not self._ws.fresh():
            self._ws = await self._new_ws_token()
        return self._ws.value

    @property
    def ws_renew_at(self) -> float:
        """When the current WebSocket token should be replaced (epoch seconds)."""
        return self._ws.renew_at if self._ws else time.time()

    async def _new_ws_token(self) -> _Token:
        for attempt in range(2):
            r = await self.http.post("/api/v1/ws/token", headers=await self.auth_headers())
            if r.status_code == 401 and attempt == 0:
                await self.sign_in()  # the access token was revoked or expired early
                continue
            if r.status_code in (401, 403):
                raise SignInError(f"no WebSocket token for {self.username!r}: {_detail(r)}")
            _check(r, "get a WebSocket token")
            body = r.json()
            now = time.time()
            return _Token(body["token"], now, now + float(body.get("expires_in", 86400)))
        raise AssertionError("unreachable")


def _detail(r: httpx.Response) -> str:
    try:
        return str(r.json().get("detail", r.text))
    except ValueError:
        return r.text


def _check(r: httpx.Response, what: str) -> None:
    if r.status_code >= 400:
        raise ChinwagError(f"could not {what}: HTTP {r.status_code} {_detail(r)}")
