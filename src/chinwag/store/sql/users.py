from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from chinwag.protocol.errors import Conflict
from chinwag.store.base import UserRecord
from chinwag.store.sql.database import Database, sqlite_time
from chinwag.store.sql.tables import User


def _record(row: User) -> UserRecord:
    return UserRecord(row.id, row.username, row.password_hash, row.is_admin, row.created_at)


class SqlUsers:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, username: str, password_hash: str, is_admin: bool = False) -> UserRecord:
        try:
            async with self._db.write() as s:
                row = User(username=username, password_hash=password_hash, is_admin=is_admin)
                s.add(row)
                await s.flush()
                return _record(row)
        except IntegrityError:
            raise Conflict(f"username '{username}' is taken") from None

    async def get(self, username: str) -> UserRecord | None:
        if self._db.is_sqlite:  # every connect and every HTTP request asks
            rows = await self._db.sqlite_rows(
                "SELECT id, username, password_hash, is_admin, created_at FROM users "
                "WHERE username = ?", (username,))
            return (UserRecord(rows[0][0], rows[0][1], rows[0][2], bool(rows[0][3]),
                               sqlite_time(rows[0][4])) if rows else None)
        async with self._db.read() as s:
            row = await s.scalar(select(User).where(User.username == username))
            return _record(row) if row else None

    async def upsert_admin(self, username: str, password_hash: str) -> UserRecord:
        try:
            return await self._upsert_admin(username, password_hash)
        except IntegrityError:  # created concurrently (several processes starting): update
            return await self._upsert_admin(username, password_hash)

    async def _upsert_admin(self, username: str, password_hash: str) -> UserRecord:
        async with self._db.write() as s:
            row = await s.scalar(select(User).where(User.username == username))
            if row is None:
                row = User(username=username, password_hash=password_hash, is_admin=True)
                s.add(row)
            else:
                row.password_hash = password_hash
                row.is_admin = True
            await s.flush()
            return _record(row)
