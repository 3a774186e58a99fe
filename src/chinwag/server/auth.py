"""Passwords (argon2) and tokens (JWT, HS256 pinned).

Access tokens (HTTP API) and WebSocket tokens carry different audiences, so one
can never be used as the other; ``exp`` is always required and checked."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chinwag.core.session import Identity
from chinwag.protocol.errors import AuthFailed, RateLimited

log = logging.getLogger(__name__)
ALGORITHM = "HS256"
ACCESS = "chinwag:access"
WEBSOCKET = "chinwag:ws"
_hasher = PasswordHasher()


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


@dataclass(frozen=True, slots=True)
class Claims:
    identity: Identity
    expires_at: float


class Tokens:
    def __init__(self, secret: str, access_ttl: int, ws_ttl: int) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.ws_ttl = ws_ttl

    def issue(self, who: Identity, audience: str, ttl: int) -> str:
        now = int(time.time())
        claims = {"sub": who.username, "uid": who.user_id, "adm": who.is_admin, "aud": audience,
                  "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def access_token(self, who: Identity) -> str:
        return self.issue(who, ACCESS, self.access_ttl)

    def ws_token(self, who: Identity) -> str:
        return self.issue(who, WEBSOCKET, self.ws_ttl)

    def verify(self, token: str | None, audience: str) -> Claims:
        """Raises AuthFailed for a missing, malformed, expired or wrong-kind token."""
        if not token:
            raise AuthFailed("a token is required")
        try:
            claims = jwt.decode(token, self._secret, algorithms=[ALGORITHM], audience=audience,
                                options={"require": ["exp", "sub", "aud", "uid"]})
        except jwt.ExpiredSignatureError:
            raise AuthFailed("the token has expired") from None
        except jwt.InvalidAudienceError:
            kind = "WebSocket" if audience == WEBSOCKET else "access"
            raise AuthFailed(f"this is not an {kind} token" if kind == "access"
                             else f"this is not a {kind} token") from None
        except jwt.PyJWTError:
            raise AuthFailed("the token is invalid") from None
        who = Identity(int(claims["uid"]), str(claims["sub"]), bool(claims.get("adm", False)))
        return Claims(who, float(claims["exp"]))


def load_or_create_secret(configured: str | None, data_dir: Path) -> str:
    """JWT_SECRET, or one generated once and kept in DATA_DIR (with a warning)."""
    if configured:
        return configured
    path = data_dir / "jwt_secret"
    if path.exists():
        secret = path.read_text().strip()
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_urlsafe(48)
        path.write_text(secret)
        path.chmod(0o600)
    log.warning("JWT_SECRET is not set: using the secret kept in %s; set JWT_SECRET when "
                "running several processes or machines", path)
    return secret


class LoginThrottle:
    """After ``max_failures`` failed logins for a name (or from an address) within
    ``lockout`` seconds, further attempts are refused until the window passes."""

    def __init__(self, max_failures: int, lockout: float) -> None:
        self.max_failures = max_failures
        self.lockout = lockout
        self._failures: dict[str, list[float]] = {}

    def check(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            recent = [t for t in self._failures.get(key, []) if t > now - self.lockout]
            if recent:
                self._failures[key] = recent
            else:
                self._failures.pop(key, None)
            if len(recent) >= self.max_failures:
                wait = max(1, int(recent[0] + self.lockout - now + 0.999))
                raise RateLimited("too many failed logins; try again later", retry_after=wait)

    def failed(self, *keys: str) -> None:
        now = time.monotonic()
        for key in keys:
            self._failures.setdefault(key, []).append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username, None)
