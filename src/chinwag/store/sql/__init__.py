"""The SQL store (SQLite or PostgreSQL through SQLAlchemy 2 async)."""

from __future__ import annotations

from chinwag.store.sql.conversations import SqlConversations, SqlFiles
from chinwag.store.sql.database import Database
from chinwag.store.sql.directory import SqlDirectory
from chinwag.store.sql.events import SqlEvents
from chinwag.store.sql.messages import SqlMessages
from chinwag.store.sql.rooms import SqlRooms
from chinwag.store.sql.search import SqlSearch
from chinwag.store.sql.users import SqlUsers


class SqlStore:
    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.users = SqlUsers(self.db)
        self.rooms = SqlRooms(self.db)
        self.events = SqlEvents(self.db)
        self.conversations = SqlConversations(self.db)
        self.files = SqlFiles(self.db)
        self.messages = SqlMessages(self.db)
        self.search = SqlSearch(self.db)
        self.directory = SqlDirectory(self.db)

    async def start(self) -> None:
        await self.db.migrate()

    async def healthy(self) -> bool:
        return await self.db.healthy()

    async def close(self) -> None:
        await self.db.close()
