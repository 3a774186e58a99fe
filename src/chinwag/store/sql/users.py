from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError

from chinwag.protocol.errors import Conflict
from chinwag.store.base import UserRecord
from chinwag.store.sql.database import Database, stored_time
from chinwag.store.sql.tables import User

_BY_NAME = select(User.id, User.username, User.password_hash, User.is_admin,
                  User.created_at).where(User.username == bindparam("username"))


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
        # Every connect and every authenticated HTTP request asks.
        rows = await self._db.rows(_BY_NAME, {"username": username})
        if not rows:
            return None
        id, name, password_hash, is_admin, created = rows[0]
        return UserRecord(id, name, password_hash, bool(is_admin), stored_time(created))

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
