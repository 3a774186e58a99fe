"""Table models. Only ``store`` imports SQLAlchemy; these never leave the package."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


# SQLite only auto-increments INTEGER PRIMARY KEY, PostgreSQL wants BIGINT here.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # A disabled user's tokens are refused and their sockets closed (admin action).
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Per-user overrides of AI_BUDGET_TOKENS_PER_DAY / AI_BUDGET_USD_PER_MONTH (NULL: default).
    budget_tokens_per_day: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_usd_per_month: Mapped[float | None] = mapped_column(Float, nullable=True)


class Room(Base):
    __tablename__ = "rooms"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    room_id: Mapped[str] = mapped_column(String(65), unique=True)
    room_name: Mapped[str] = mapped_column(String(200))
    room_type: Mapped[str] = mapped_column(String(16))
    owner: Mapped[str] = mapped_column(String(64))
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    members_version: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # "joined": members see events after their joined_seq; "shared": all of them
    history_visibility: Mapped[str] = mapped_column(
        String(16), default="shared", server_default="shared"
    )
    __table_args__ = (Index("ix_rooms_owner", "owner"),)


class RoomMember(Base):
    __tablename__ = "room_members"
    room_pk: Mapped[int] = mapped_column(
        ForeignKey("rooms.id", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    delivered_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    read_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    joined_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    __table_args__ = (Index("ix_room_members_username", "username"),)


class RoomEvent(Base):
    __tablename__ = "room_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    room_pk: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(String(32))
    data: Mapped[dict[str, object]] = mapped_column(JSON)
    sender: Mapped[str | None] = mapped_column(String(64), nullable=True)
    client_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    __table_args__ = (
        UniqueConstraint("room_pk", "seq", name="uq_room_events_seq"),
        UniqueConstraint("room_pk", "sender", "client_message_id", name="uq_room_events_client_id"),
    )
    # Beside these columns (migration 0006, not mapped here because they differ by
    # database): the search index (SQLite: the FTS5 table room_events_fts and its
    # triggers; PostgreSQL: the generated column search_vector with a GIN index) and
    # the expression index ix_room_events_ref on the message an event refers to.


# The columns an EventRecord is built from, in its field order (room_id aside).
EVENT_RECORD_COLUMNS = (
    RoomEvent.id,
    RoomEvent.seq,
    RoomEvent.type,
    RoomEvent.data,
    RoomEvent.sender,
    RoomEvent.client_message_id,
    RoomEvent.created_at,
)


class MessageMention(Base):
    """A chat that names a member with ``@username``."""

    __tablename__ = "message_mentions"
    event_id: Mapped[int] = mapped_column(
        ForeignKey("room_events.id", ondelete="CASCADE"), primary_key=True
    )
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    room_pk: Mapped[int] = mapped_column(ForeignKey("rooms.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    by: Mapped[str] = mapped_column(String(64))
    __table_args__ = (Index("ix_message_mentions_user", "username", "room_pk", "seq"),)


class Conversation(Base):
    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200))
    room_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)


class ConversationTurn(Base):
    __tablename__ = "conversation_turns"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)
    username: Mapped[str | None] = mapped_column(String(64), nullable=True)
    model: Mapped[str | None] = mapped_column(String(128), nullable=True)
    tokens_used: Mapped[int] = mapped_column(Integer, default=0)
    cost_usd: Mapped[float] = mapped_column(Float, default=0.0)
    client_message_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    # The turn this one follows: regenerate and edit add siblings, never delete.
    parent_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    __table_args__ = (
        Index("ix_turns_client_id", "username", "client_message_id"),
        Index("ix_turns_parent", "conversation_id", "parent_id"),
    )


class StoredFile(Base):
    __tablename__ = "files"
    file_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    room_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # The room row, not its name: deleting the room deletes the record (and the
    # server its bytes), so a room re-created under the same id gets none of them.
    room_pk: Mapped[int | None] = mapped_column(
        BigId,
        ForeignKey("rooms.id", ondelete="CASCADE", name="fk_files_room_pk"),
        nullable=True,
        index=False,
    )
    file_name: Mapped[str] = mapped_column(String(255))
    file_size: Mapped[int] = mapped_column(BigInteger)
    mime_type: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    __table_args__ = (Index("ix_files_room_pk", "room_pk"),)


class AiReply(Base):
    """One AI reply's claim on its user's budget: while ``running`` it holds its worst
    case (``reserved_*``), when done what it used (``billed_*``, at most the
    reservation). A running row whose lease (``expires_at``) ran out belongs to a
    process that died: it no longer counts as running, but keeps its reservation."""

    __tablename__ = "ai_replies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    node_id: Mapped[str] = mapped_column(String(64))
    running: Mapped[bool] = mapped_column(Boolean, default=True)
    reserved_tokens: Mapped[int] = mapped_column(BigInteger)
    reserved_usd: Mapped[float] = mapped_column(Float)
    billed_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    billed_usd: Mapped[float] = mapped_column(Float, default=0.0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        Index("ix_ai_replies_user_time", "username", "created_at"),
        Index("ix_ai_replies_conversation", "conversation_id", "running"),
    )


class Upload(Base):
    """An upload in progress (the bytes are in the file storage)."""

    __tablename__ = "uploads"
    file_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64), index=True)
    room_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    file_name: Mapped[str] = mapped_column(String(255))
    extension: Mapped[str] = mapped_column(String(16))
    file_size: Mapped[int] = mapped_column(BigInteger)
    chunk_size: Mapped[int] = mapped_column(BigInteger)
    total_chunks: Mapped[int] = mapped_column(Integer)
    handle: Mapped[str] = mapped_column(String(1024), default="")
    last_active: Mapped[float] = mapped_column(Float, index=True)
    finalizing_since: Mapped[float | None] = mapped_column(Float, nullable=True)


class UploadPart(Base):
    """A received chunk of an upload in progress; ``token`` is what the storage
    needs to assemble it (an S3 part's ETag)."""

    __tablename__ = "upload_chunks"
    file_id: Mapped[str] = mapped_column(
        ForeignKey("uploads.file_id", ondelete="CASCADE"), primary_key=True
    )
    chunk_index: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(256), default="")
