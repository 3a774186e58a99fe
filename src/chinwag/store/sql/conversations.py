from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from chinwag.protocol.errors import NotFound
from chinwag.store.base import ConversationRecord, TurnRecord
from chinwag.store.files import FileRecord
from chinwag.store.sql.database import Database
from chinwag.store.sql.tables import Conversation, ConversationTurn, Room, StoredFile


def _conv(row: Conversation) -> ConversationRecord:
    return ConversationRecord(row.id, row.owner, row.title, row.room_id, row.created_at)


def _turn(row: ConversationTurn) -> TurnRecord:
    return TurnRecord(
        row.id,
        row.conversation_id,
        row.role,
        row.content,
        row.username,
        row.model,
        row.tokens_used,
        row.cost_usd,
        row.client_message_id,
        row.created_at,
        row.parent_id,
    )


async def _links(s: AsyncSession, conversation_id: int) -> list[tuple[int, int | None]]:
    """(turn id, parent id) of every turn of the conversation, oldest first."""
    rows = await s.execute(
        select(ConversationTurn.id, ConversationTurn.parent_id)
        .where(ConversationTurn.conversation_id == conversation_id)
        .order_by(ConversationTurn.id)
    )
    return list(rows.tuples().all())


class SqlConversations:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, owner: str, title: str, room_id: str | None) -> ConversationRecord:
        async with self._db.write() as s:
            row = Conversation(owner=owner, title=title[:200], room_id=room_id)
            s.add(row)
            await s.flush()
            return _conv(row)

    async def get(self, conversation_id: int) -> ConversationRecord | None:
        async with self._db.read() as s:
            row = await s.get(Conversation, conversation_id)
            return _conv(row) if row else None

    async def list_for(self, owner: str) -> list[ConversationRecord]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(Conversation)
                .where(Conversation.owner == owner)
                .order_by(Conversation.id.desc())
            )
            return [_conv(r) for r in rows]

    async def add_turn(
        self,
        conversation_id: int,
        role: str,
        content: str,
        *,
        username: str | None = None,
        model: str | None = None,
        tokens_used: int = 0,
        cost_usd: float = 0.0,
        client_message_id: str | None = None,
        parent_id: int | None = None,
    ) -> TurnRecord:
        async with self._db.write() as s:
            row = ConversationTurn(
                conversation_id=conversation_id,
                role=role,
                content=content,
                username=username,
                model=model,
                tokens_used=tokens_used,
                cost_usd=cost_usd,
                client_message_id=client_message_id,
                parent_id=parent_id,
            )
            s.add(row)
            await s.flush()
            return _turn(row)

    async def turns(self, conversation_id: int, limit: int = 200) -> list[TurnRecord]:
        async with self._db.read() as s:
            rows = await s.scalars(
                select(ConversationTurn)
                .where(ConversationTurn.conversation_id == conversation_id)
                .order_by(ConversationTurn.id.desc())
                .limit(limit)
            )
            return [_turn(r) for r in reversed(list(rows))]

    async def turn(self, turn_id: int) -> TurnRecord | None:
        async with self._db.read() as s:
            row = await s.get(ConversationTurn, turn_id)
            return _turn(row) if row else None

    async def branch(
        self, conversation_id: int, leaf_id: int | None = None, limit: int = 1000
    ) -> list[TurnRecord]:
        async with self._db.read() as s:
            # The tree's shape is small (two ids per turn); the branch is walked here,
            # then only its turns are read whole.
            links = dict(await _links(s, conversation_id))
            if leaf_id is None:
                leaf_id = max(links, default=None)
            path: list[int] = []
            while leaf_id is not None and leaf_id in links and len(path) < limit:
                path.append(leaf_id)
                leaf_id = links[leaf_id]
            if not path:
                return []
            rows = await s.scalars(
                select(ConversationTurn)
                .where(ConversationTurn.id.in_(path))
                .order_by(ConversationTurn.id)
            )
            by_id = {r.id: _turn(r) for r in rows}
        return [by_id[i] for i in reversed(path)]

    async def siblings(self, conversation_id: int, turns: list[TurnRecord]) -> dict[int, list[int]]:
        parents = {t.parent_id for t in turns}
        async with self._db.read() as s:
            rows = await _links(s, conversation_id)
        children: dict[int | None, list[int]] = {}
        for turn_id, parent in rows:
            if parent in parents:
                children.setdefault(parent, []).append(turn_id)
        return {t.id: children.get(t.parent_id, [t.id]) for t in turns}

    async def find_turn(self, username: str, client_message_id: str) -> TurnRecord | None:
        async with self._db.read() as s:
            row = await s.scalar(
                select(ConversationTurn)
                .where(
                    ConversationTurn.username == username,
                    ConversationTurn.client_message_id == client_message_id,
                )
                .limit(1)
            )
            return _turn(row) if row else None


class SqlFiles:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, record: FileRecord) -> None:
        async with self._db.write() as s:
            room_pk = None
            if record.room_id is not None:
                room_pk = await s.scalar(
                    select(Room.id)
                    .where(Room.room_id == record.room_id)
                    .with_for_update(key_share=True)
                )
                if room_pk is None:
                    raise NotFound(f"room '{record.room_id}' no longer exists")
            s.add(
                StoredFile(
                    file_id=record.file_id,
                    owner=record.owner,
                    room_id=record.room_id,
                    room_pk=room_pk,
                    file_name=record.file_name,
                    file_size=record.file_size,
                    mime_type=record.mime_type,
                    checksum=record.checksum,
                    stored_name=record.stored_name,
                    created_at=record.created_at,
                )
            )

    async def get(self, file_id: str) -> FileRecord | None:
        async with self._db.read() as s:
            row = await s.get(StoredFile, file_id)
            if row is None:
                return None
            return FileRecord(
                row.file_id,
                row.owner,
                row.room_id,
                row.file_name,
                row.file_size,
                row.mime_type,
                row.checksum,
                row.stored_name,
                row.created_at,
            )
