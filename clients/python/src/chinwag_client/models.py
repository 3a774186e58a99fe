"""What the SDK hands to the application: plain frozen dataclasses built from the
server's frames. Unknown fields are kept in ``data``; nothing is dropped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Frame = dict[str, Any]


@dataclass(frozen=True)
class Event:
    """One server event. Stored room events (chat, AI completions, shared files,
    membership changes, edits, deletions, reactions …) have a ``seq``; ephemeral ones
    (typing, presence online/offline, AI chunks, receipts, mentions) have
    ``seq=None``."""

    type: str
    data: dict[str, Any]
    room_id: str | None = None
    seq: int | None = None

    @classmethod
    def from_frame(cls, frame: Frame) -> Event:
        data = frame.get("data")
        return cls(
            str(frame.get("type")),
            data if isinstance(data, dict) else {},
            frame.get("room_id"),
            frame.get("seq"),
        )

    @property
    def stored(self) -> bool:
        return self.seq is not None and self.room_id is not None

    @property
    def username(self) -> str | None:
        return self.data.get("username")

    @property
    def content(self) -> str:
        """The text of a chat or of a ``message_edited`` (``""`` once deleted)."""
        return str(self.data.get("content") or "")

    # ---- SPEC §14: edits, deletions, replies, reactions, mentions --------------------

    @property
    def message_id(self) -> int | None:
        """The server id of the message: a ``chat``'s own id; for ``message_edited``,
        ``message_deleted``, ``reaction`` and ``mention`` the message they are about.
        Pass it to ``edit``, ``delete``, ``react`` and ``send(reply_to=…)``."""
        return _int(self.data.get("message_id"))

    @property
    def reply_to(self) -> int | None:
        """The server id of the message a ``chat`` answers (None: not a reply; an AI
        completion's ``reply_to`` names the asker, not a message, and gives None)."""
        return _int(self.data.get("reply_to"))

    @property
    def edited_at(self) -> str | None:
        """When a ``chat`` (as replayed or in history) or a ``message_edited`` was
        edited last (ISO 8601, UTC)."""
        value = self.data.get("edited_at")
        return str(value) if value is not None else None

    @property
    def deleted(self) -> bool:
        """A tombstone: a deleted ``chat`` (or an edit of it) replayed, no content."""
        return bool(self.data.get("deleted"))

    @property
    def emoji(self) -> str | None:
        """A ``reaction``'s emoji."""
        value = self.data.get("emoji")
        return str(value) if value is not None else None

    @property
    def on(self) -> bool:
        """A ``reaction`` given (True) or taken back (False)."""
        return bool(self.data.get("on", True))

    @property
    def reactions(self) -> dict[str, tuple[str, ...]]:
        """A ``chat`` from history: ``{emoji: usernames in the order they reacted}``."""
        raw = self.data.get("reactions")
        if not isinstance(raw, dict):
            return {}
        return {str(k): tuple(str(u) for u in v) for k, v in raw.items()}

    @property
    def mentioned_by(self) -> str | None:
        """A ``mention``: who named this user (``by``)."""
        value = self.data.get("by") if self.type == "mention" else None
        return str(value) if value is not None else None

    @property
    def mention_seq(self) -> int | None:
        """A ``mention``: the seq of the chat that names this user (the mention
        itself is not stored and has ``seq=None``)."""
        return _int(self.data.get("seq")) if self.type == "mention" else None


@dataclass(frozen=True)
class Confirmation:
    """The server's ``delivery_confirmation`` for a message the application sent.
    ``duplicate`` is true when the message had already been stored (a resend)."""

    message_id: str
    server_message_id: int
    room_id: str | None
    seq: int | None
    status: str
    queued_for: tuple[str, ...] = ()
    duplicate: bool = False
    conversation_id: int | None = None
    timestamp: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Confirmation:
        return cls(
            str(data.get("message_id")),
            int(data["server_message_id"]),
            data.get("room_id"),
            data.get("seq"),
            str(data.get("status")),
            tuple(data.get("queued_for") or ()),
            bool(data.get("duplicate")),
            data.get("conversation_id"),
            data.get("timestamp"),
        )


@dataclass(frozen=True)
class Change:
    """The server's confirmation of an ``edit``, ``delete`` or ``react``.

    ``seq`` and ``event_id`` are those of the stored ``message_edited``,
    ``message_deleted`` or ``reaction`` event. ``unchanged`` is true when there was
    nothing to change (the same text again, a reaction one already gave or never
    gave): nothing was stored, and ``seq`` and ``event_id`` are None. ``duplicate``
    is true when the request had been carried out already (a resend after a drop)."""

    message_id: str
    room_id: str | None
    seq: int | None
    event_id: int | None
    unchanged: bool = False
    duplicate: bool = False
    timestamp: str | None = None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Change:
        return cls(
            str(data.get("message_id")),
            data.get("room_id"),
            _int(data.get("seq")),
            _int(data.get("server_message_id")),
            bool(data.get("unchanged")),
            bool(data.get("duplicate")),
            data.get("timestamp"),
        )


@dataclass(frozen=True)
class SearchResult:
    """One chat found by ``search`` (its latest text)."""

    room_id: str
    seq: int
    message_id: int
    username: str
    content: str
    timestamp: str

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> SearchResult:
        return cls(
            str(data["room_id"]),
            int(data["seq"]),
            int(data["message_id"]),
            str(data.get("username") or ""),
            str(data.get("content") or ""),
            str(data.get("timestamp") or ""),
        )


@dataclass(frozen=True)
class Reply:
    """An AI reply, complete. ``seq`` is set when it was stored in a room."""

    text: str
    conversation_id: int
    tokens_used: int
    model_used: str
    cost_usd: float
    room_id: str | None = None
    seq: int | None = None
    cancelled: bool = False
    model_fallback: bool = False


@dataclass(frozen=True)
class UploadedFile:
    """A finished upload: fetch its bytes from ``url`` with an access token."""

    file_id: str
    url: str
    checksum: str
    file_name: str
    file_size: int
    mime_type: str
    room_id: str | None = None
    seq: int | None = None

    @classmethod
    def from_frame(cls, frame: Frame) -> UploadedFile:
        d = frame["data"]
        return cls(
            d["file_id"],
            d["url"],
            d["checksum"],
            d["file_name"],
            int(d["file_size"]),
            d.get("mime_type", ""),
            frame.get("room_id"),
            frame.get("seq"),
        )


@dataclass(frozen=True)
class Room:
    """The answer to ``join``: who belongs to the room and who is connected now."""

    room_id: str
    room_name: str
    room_type: str
    members: tuple[str, ...] = ()
    participants: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Room:
        return cls(
            data["room_id"],
            data.get("room_name", data["room_id"]),
            data.get("room_type", ""),
            tuple(data.get("members") or ()),
            tuple(data.get("participants") or ()),
            data,
        )


def _int(value: object) -> int | None:
    """An integer field, or None when absent or not an integer (``bool`` excluded)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None
