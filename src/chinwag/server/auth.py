"""Passwords (argon2) and tokens (JWT, HS256 pinned).

Access tokens (HTTP API) and WebSocket tokens carry different audiences, so one
can never be used as the other; ``exp`` is always required and checked."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from chinwag.core.session import Identity
from chinwag.protocol.errors import AuthFailed
from chinwag.settings import SettingsError

log = logging.getLogger(__name__)
ALGORITHM = "HS256"
ACCESS = "chinwag:access"
WEBSOCKET = "chinwag:ws"
_hasher = PasswordHasher()


class Passwords:
    """argon2 off the event loop, in bounded pools of its own (argon2 releases the
    GIL; each hash costs ~0.3 s of CPU and 64 MiB). Logins are checked in
    ``workers`` threads; new passwords (registrations) are hashed in one thread
    apart, so a burst of registrations takes at most one core and never queues
    ahead of a login."""

    def __init__(self, workers: int) -> None:
        self._checking = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="argon2")
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="argon2-new")

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._hashing, _hasher.hash, password
        )

    async def verify(self, password_hash: str, password: str) -> bool:
        return await asyncio.get_running_loop().run_in_executor(
            self._checking, _check, password_hash, password
        )

    def close(self) -> None:
        for pool in (self._checking, self._hashing):
            pool.shutdown(wait=False, cancel_futures=True)


def _check(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True, slots=True)
class Claims:
    identity: Identity
    expires_at: float


#: Tokens whose signature and claims were checked, kept to skip the check when one is
#: presented again (every reconnect, every HTTP request with the same access token).
VERIFIED_KEPT = 10_000


class Tokens:
    def __init__(self, secret: str, access_ttl: int, ws_ttl: int) -> None:
        self._secret = secret
        self.access_ttl = access_ttl
        self.ws_ttl = ws_ttl
        # (token, audience) -> its claims. A token is immutable and signed, so what
        # was true of it stays true but for its expiry, checked at each use.
        self._verified: dict[tuple[str, str], Claims] = {}

    def issue(self, who: Identity, audience: str, ttl: int) -> str:
        now = int(time.time())
        claims = {
            "sub": who.username,
            "uid": who.user_id,
            "adm": who.is_admin,
            "aud": audience,
            "iat": now,
            "exp": now + ttl,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=ALGORITHM)

    def access_token(self, who: Identity) -> str:
        return self.issue(who, ACCESS, self.access_ttl)

    def ws_token(self, who: Identity) -> str:
        return self.issue(who, WEBSOCKET, self.ws_ttl)

    def verify(self, token: str | None, audience: str) -> Claims:
        """Raises AuthFailed for a missing, malformed, expired or wrong-kind token."""
        if not token:
            raise AuthFailed("a token is required")
        key = (token, audience)
        known = self._verified.get(key)
        if known is not None:
            if known.expires_at <= time.time():
                del self._verified[key]
                raise AuthFailed("the token has expired")
            return known
        claims = self._decode(token, audience)
        if len(self._verified) >= VERIFIED_KEPT:
            self._verified.clear()
        self._verified[key] = claims
        return claims

    def _decode(self, token: str, audience: str) -> Claims:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                audience=audience,
                options={"require": ["exp", "sub", "aud", "uid"]},
            )
        except jwt.ExpiredSignatureError:
            raise AuthFailed("the token has expired") from None
        except jwt.InvalidAudienceError:
            kind = "WebSocket" if audience == WEBSOCKET else "access"
            raise AuthFailed(
                f"this is not an {kind} token"
                if kind == "access"
                else f"this is not a {kind} token"
            ) from None
        except jwt.PyJWTError:
            raise AuthFailed("the token is invalid") from None
        who = Identity(int(claims["uid"]), str(claims["sub"]), bool(claims.get("adm", False)))
        return Claims(who, float(claims["exp"]))


def load_or_create_secret(configured: str | None, data_dir: Path) -> str:
    """JWT_SECRET, or one generated once and kept in DATA_DIR (with a warning).

    Several processes may start together on a fresh DATA_DIR: each writes its
    candidate to a file of its own and links it into place, which fails for all but
    the first; every process then reads the one that won, never a half-written file."""
    if configured:
        return configured
    path = data_dir / "jwt_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        candidate = data_dir / f".jwt_secret.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            with contextlib.suppress(FileExistsError):
                os.link(candidate, path)
        finally:
            candidate.unlink(missing_ok=True)
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise SettingsError(
            f"invalid setting JWT_SECRET: {path} holds fewer than 32 "
            "characters; delete it to have a new one generated"
        )
    log.warning(
        "JWT_SECRET is not set: using the secret kept in %s; set JWT_SECRET when "
        "running several processes or machines",
        path,
    )
    return secret
