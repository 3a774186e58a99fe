from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from chinwag.protocol.errors import Conflict
from chinwag.store.base import UserChanges, UserRecord
from chinwag.store.sql.database import Database, stored_time
from chinwag.store.sql.tables import User

_COLUMNS = (
    User.id,
    User.username,
    User.password_hash,
    User.is_admin,
    User.created_at,
    User.disabled,
    User.budget_tokens_per_day,
    User.budget_usd_per_month,
)
_BY_NAME = select(*_COLUMNS).where(User.username == bindparam("username"))


def _record(row: User) -> UserRecord:
    return UserRecord(
        row.id,
        row.username,
        row.password_hash,
        row.is_admin,
        row.created_at,
        bool(row.disabled),
        row.budget_tokens_per_day,
        row.budget_usd_per_month,
    )


def _from_columns(row: Any) -> UserRecord:
    id, name, password_hash, is_admin, created, disabled, tokens, usd = row
    return UserRecord(
        id, name, password_hash, bool(is_admin), stored_time(created), bool(disabled), tokens, usd
    )


class SqlUsers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, username: str, password_hash: str, is_admin: bool = False) -> UserRecord:
        try:
            async with self._db.write() as s:
                row = User(
                    username=username,
                    password_hash=password_hash,
                    is_admin=is_admin,
                    disabled=False,
                )
                s.add(row)
                await s.flush()
                return _record(row)
        except IntegrityError:
            raise Conflict(f"username '{username}' is taken") from None

    async def get(self, username: str) -> UserRecord | None:
        # Every connect and every authenticated HTTP request asks.
        rows = await self._db.rows(_BY_NAME, {"username": username})
        return _from_columns(rows[0]) if rows else None

    async def list_all(self, limit: int = 1000) -> list[UserRecord]:
        async with self._db.read() as s:
            rows = await s.execute(select(*_COLUMNS).order_by(User.username).limit(limit))
            return [_from_columns(r) for r in rows.all()]

    async def with_prefix(self, prefix: str, limit: int) -> list[str]:
        escaped = prefix.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        async with self._db.read() as s:
            rows = await s.scalars(
                select(User.username)
                .where(
                    func.lower(User.username).like(escaped + "%", escape="\\"),
                    User.disabled.is_(False),
                )
                .order_by(User.username)
                .limit(limit)
            )
            return list(rows)

    async def update(self, username: str, changes: UserChanges) -> UserRecord | None:
        values: dict[str, Any] = {}
        if changes.disabled is not None:
            values["disabled"] = changes.disabled
        if changes.is_admin is not None:
            values["is_admin"] = changes.is_admin
        if changes.budget is not None:
            values["budget_tokens_per_day"] = changes.budget.tokens_per_day
            values["budget_usd_per_month"] = changes.budget.usd_per_month
        if values:
            async with self._db.write() as s:
                await s.execute(update(User).where(User.username == username).values(**values))
        return await self.get(username)

    async def upsert_admin(self, username: str, password_hash: str) -> UserRecord:
        try:
            return await self._upsert_admin(username, password_hash)
        except IntegrityError:  # created concurrently (several processes starting): update
            return await self._upsert_admin(username, password_hash)

    async def _upsert_admin(self, username: str, password_hash: str) -> UserRecord:
        async with self._db.write() as s:
            row = await s.scalar(select(User).where(User.username == username))
            if row is None:
                row = User(
                    username=username, password_hash=password_hash, is_admin=True, disabled=False
                )
                s.add(row)
            else:
                row.password_hash = password_hash
                row.is_admin = True
            await s.flush()
            return _record(row)
